"""One gateway over two models, over real HTTP on loopback: the cascade served round by round, backends found
per model, direct requests to a backend model, and a ledger in cost units (samples or tokens × price) that is
exact per model, in local memory and in Redis."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from allocator.base import Policy
from allocator.cascade import CascadingAdaptive
from allocator.data import Outcomes
from bench.processes import RedisServer
from oracle.fleet import align
from oracle.synthetic import synthetic_outcomes
from service.app import create_app
from service.fleet import FleetError, discover, parse_backend
from service.server_thread import ServerThread
from service.settings import Settings, SettingsError
from service.simulator import Simulator, create_simulator_app
from tests.conftest import key, tenants_file
from tests.test_cli import run

KS = (1, 2, 4, 8, 16)
PRICES = {"small": 1.0, "large": 20.0}
SMALL = list(synthetic_outcomes(160, 16, seed=11, model="small"))
LARGE = list(synthetic_outcomes(160, 16, seed=11, model="large", skill=4.5))
HELD_OUT = [q.question for q in SMALL[120:]]


def outcomes(unit: str) -> Outcomes:
    fleet = align([("small", SMALL[:120]), ("large", LARGE[:120])])
    return Outcomes.of_fleet(fleet, KS, PRICES, unit)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cascade() -> CascadingAdaptive:
    return CascadingAdaptive().fit(outcomes("samples"), 8.0)


@pytest.fixture(scope="module")
def cascade_in_tokens() -> CascadingAdaptive:
    data = outcomes("tokens")
    per_sample = data.curves.unit_cost.mean(axis=0)  # (small, large): price × mean tokens per sample
    return CascadingAdaptive().fit(data, float(4 * per_sample[0] + 0.2 * per_sample[1]))


@pytest.fixture(scope="module")
def both() -> Iterator[str]:
    """One simulator serving both models under their own names, as two vLLMs behind one URL would."""
    with ServerThread(create_simulator_app(Simulator.fleet({"small": SMALL, "large": LARGE}))) as url:
        yield url + "/v1"


def gateway(policy: Policy, backends: list[str], **options: Any) -> ServerThread:
    return ServerThread(create_app(Settings(backends=backends, **options), policy=policy))


def ask(client: httpx.Client, question: str, seed: int, **extra: Any) -> dict[str, Any]:
    body = {"model": "apportion", "messages": [{"role": "user", "content": question}], "seed": seed, **extra}
    reply = client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_the_cascade_is_served_round_by_round_and_charged_per_model(cascade: CascadingAdaptive, both: str) -> None:
    with gateway(cascade, [both]) as url, httpx.Client(base_url=url, timeout=60) as client:
        sdk = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        assert [m.id for m in sdk.models.list()] == ["apportion", "small", "large"]
        decisions = [ask(client, q, seed=i)["apportion"] for i, q in enumerate(HELD_OUT)]
        spent = Counter[str]()
        for d in decisions:
            assert set(d["models"]) <= {"small", "large"} and d["samples"] == sum(
                u["samples"] for u in d["models"].values()
            )
            assert d["cost"] == pytest.approx(sum(PRICES[m] * u["samples"] for m, u in d["models"].items()))
            spent.update({m: u["samples"] for m, u in d["models"].items()})
        escalated = sum(len(d["models"]) == 2 for d in decisions)
        assert 0 < escalated < len(decisions), "some queries stop on the small model, some escalate"
        budget = client.get("/v1/budget").json()
        assert budget["queries"] == len(decisions) and budget["unit"] == "cost units (samples × price)"
        assert budget["cost"] == pytest.approx(sum(d["cost"] for d in decisions))
        rows = {row["model"]: row for row in budget["models"]}
        assert {m: rows[m]["samples"] for m in rows} == dict(spent)
        assert rows["large"]["cost"] == 20.0 * spent["large"]
        metrics = client.get("/metrics").text
        assert f'apportion_cost_total{{model="large",tenant="anonymous"}} {20.0 * spent["large"]}' in metrics
        assert f'apportion_queries_by_models_total{{models="2"}} {float(escalated)}' in metrics


@pytest.mark.parametrize("store", ["local", "redis"])
def test_in_tokens_the_ledger_is_exactly_price_times_the_reported_tokens(
    cascade_in_tokens: CascadingAdaptive, both: str, redis_server: RedisServer, store: str
) -> None:
    options: dict[str, Any] = {"cost": "tokens"}
    if store == "redis":
        redis_server.flush()
        options["redis"] = redis_server.url
    with gateway(cascade_in_tokens, [both], **options) as url, httpx.Client(base_url=url, timeout=60) as client:
        replies = [ask(client, q, seed=i) for i, q in enumerate(HELD_OUT)]
        tokens = Counter[str]()
        for reply in replies:
            used = reply["apportion"]["models"]
            assert sum(u["tokens"] for u in used.values()) == reply["usage"]["completion_tokens"]
            assert reply["apportion"]["cost"] == pytest.approx(sum(PRICES[m] * u["tokens"] for m, u in used.items()))
            tokens.update({m: u["tokens"] for m, u in used.items()})
        budget = client.get("/v1/budget").json()
    assert budget["unit"] == "cost units (tokens × price)" and budget["store"] == store
    rows = {row["model"]: row for row in budget["models"]}
    assert {m: rows[m]["units"] for m in rows} == dict(tokens), "the ledger counts every token the backends reported"
    assert sum(row["cost"] for row in rows.values()) == sum(PRICES[m] * n for m, n in tokens.items())
    assert budget["cost"] == pytest.approx(sum(PRICES[m] * n for m, n in tokens.items()), rel=1e-12)


def test_a_backend_model_named_by_the_client_gets_one_sample_outside_the_target(
    cascade: CascadingAdaptive, both: str
) -> None:
    with gateway(cascade, [both]) as url, httpx.Client(base_url=url, timeout=60) as client:
        body = {"model": "large", "messages": [{"role": "user", "content": HELD_OUT[0]}], "max_samples": 16}
        reply = client.post("/v1/chat/completions", json=body).json()
        assert reply["model"] == "large"
        assert reply["apportion"]["models"] == {
            "large": {"samples": 1, "tokens": reply["usage"]["completion_tokens"], "cost": 20.0}
        }
        budget = client.get("/v1/budget").json()
        assert budget["queries"] == 0 and budget["cost"] == 0, "the policy did not choose it: the target ignores it"
        assert [(t["tenant"], t["queries"], t["cost"]) for t in budget["tenants"]] == [("anonymous", 1, 20.0)]
        assert [(m["model"], m["samples"]) for m in budget["models"]] == [("large", 1)]


def test_backends_are_found_per_model_or_pinned_and_a_missing_model_stops_start_up(cascade: CascadingAdaptive) -> None:
    small = ServerThread(create_simulator_app(Simulator(SMALL, model="small")))
    plain = ServerThread(create_simulator_app(Simulator(LARGE, model="vllm-large-awq")))
    with small as small_url, plain as plain_url:
        with pytest.raises(FleetError) as refused:
            create_app(Settings(backends=[small_url + "/v1", plain_url + "/v1"]), policy=cascade)
        message = str(refused.value)
        assert "'large'" in message and "vllm-large-awq" in message and "--backend large=URL" in message
        with pytest.raises(FleetError, match="the policy has no model 'medium'"):
            create_app(Settings(backends=[f"medium={plain_url}/v1"]), policy=cascade)
        with pytest.raises(SettingsError, match="--price larg: no model of that name"):
            create_app(
                Settings(backends=[small_url + "/v1", f"large={plain_url}/v1"], prices=["larg=20"]), policy=cascade
            )
        pinned = [small_url + "/v1", f"large={plain_url}/v1"]
        with gateway(cascade, pinned) as url, httpx.Client(base_url=url, timeout=60) as client:
            assert [m["id"] for m in client.get("/v1/models").json()["data"]] == [
                "apportion",
                "small",
                "vllm-large-awq",
            ]
            used = {m for i, q in enumerate(HELD_OUT[:20]) for m in ask(client, q, seed=i)["apportion"]["models"]}
            assert used == {"small", "large"}, "the pinned backend serves the policy's `large`, under its own name"
            assert client.get("/readyz").json()["models"] == {"small": "up", "large": "up"}
            body = {"model": "vllm-large-awq", "messages": [{"role": "user", "content": HELD_OUT[0]}]}
            direct = client.post("/v1/chat/completions", json=body).json()["apportion"]
            assert direct["cost"] == 20.0, "the pinned backend's own name is priced as the model it serves"
        with gateway(cascade, pinned) as url:
            plain.__exit__(None, None, None)
            ready = httpx.get(url + "/readyz")
            assert ready.status_code == 503 and ready.json()["models"] == {"small": "up", "large": "down"}


def test_serve_exits_2_in_one_line_when_no_backend_serves_a_model(
    capsys: pytest.CaptureFixture[str], cascade: CascadingAdaptive, tmp_path: Path
) -> None:
    from files.models import save_model

    save_model(tmp_path / "model", cascade, {"prices": PRICES, "cost_unit": "samples"})
    with ServerThread(create_simulator_app(Simulator(SMALL, model="small"))) as url:
        code, _, err = run(capsys, "serve", "--model", str(tmp_path / "model"), "--backend", url + "/v1")
    assert code == 2 and "no backend serves the policy's model 'large'" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(
        capsys, "serve", "--model", str(tmp_path / "model"), "--backend", url + "/v1", "--cost", "tokens"
    )
    assert code == 1 and "trained with cost in samples" in err


def test_in_tokens_a_quota_holds_the_most_a_round_can_cost(
    cascade_in_tokens: CascadingAdaptive, both: str, tmp_path: Path
) -> None:
    """A hostile tenant asking for huge completions cannot overdraw its allowance: each round holds price ×
    samples × max_tokens until it is charged what the backend reported."""
    tenants = tenants_file(tmp_path, {"tenant": "capped", "budget": 400, "budget_period": "daily"})
    with gateway(cascade_in_tokens, [both], cost="tokens", tenants=tenants) as url, httpx.Client(base_url=url) as c:
        body = {"model": "apportion", "messages": [{"role": "user", "content": HELD_OUT[0]}], "max_tokens": 10**6}
        refused = c.post("/v1/chat/completions", json=body, headers=key("capped"))
        assert refused.status_code == 429 and "for this day" in refused.json()["error"]["message"]
        served = 0
        for question in HELD_OUT:
            body = {"model": "apportion", "messages": [{"role": "user", "content": question}], "max_tokens": 24}
            reply = c.post("/v1/chat/completions", json=body, headers=key("capped"))
            if reply.status_code == 429:
                break
            served += 1
        row = c.get("/v1/budget", headers=key("capped")).json()["tenants"][0]
    assert served > 0 and row["budget_period"] == "daily"
    assert row["cost"] <= 400 and row["left"] == pytest.approx(400 - row["cost"])


def test_pins_and_urls_parse_and_an_unreachable_backend_serves_a_one_model_policy() -> None:
    assert parse_backend("large=http://h:8000/v1/") == parse_backend("large=http://h:8000/v1")
    assert parse_backend("http://h:8000/v1?a=b").pinned is None
    fleet = discover([parse_backend("http://127.0.0.1:9/v1")], ["synthetic"])
    assert fleet.pools == {"synthetic": [("http://127.0.0.1:9/v1", None)]}, "asked its name once it is up"
    with pytest.raises(FleetError, match="unreachable"):
        discover([parse_backend("http://127.0.0.1:9/v1")], ["small", "large"])
    listed = {"http://a/v1": ["small", "large"]}
    assert discover([parse_backend("http://a/v1")], ["small", "large"], listed=listed).pools == {
        "small": [("http://a/v1", "small")],
        "large": [("http://a/v1", "large")],
    }


def test_a_tenants_file_with_a_period_needs_a_budget_and_a_known_period(tmp_path: Path) -> None:
    from service.tenants import TenantFileError, Tenants

    for entry, says in (
        ({"budget_period": "daily"}, "needs a budget"),
        ({"budget": 5, "budget_period": "hourly"}, "budget_period"),
        ({"budget": -1}, "budget must be"),
    ):
        path = tenants_file(tmp_path, {"tenant": "t", **entry})
        with pytest.raises(TenantFileError, match=says):
            Tenants.read(path, None)
    path = tenants_file(tmp_path, {"tenant": "t", "budget": 2.5, "budget_period": "monthly"})
    (tenant,) = Tenants.read(path, None).by_hash.values()
    assert tenant.quota == 2.5 and tenant.period_key(0.0) == "1970-01" and tenant.period_key(86400 * 40) == "1970-02"


def test_the_demo_serves_the_cascade_against_random_routing_and_always_strong(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from files.outcomes import write_jsonl

    for name, records in (("small", SMALL), ("large", LARGE)):
        write_jsonl(tmp_path / f"{name}.jsonl", (q.to_record() for q in records))
    files = ["--outcomes", str(tmp_path / "small.jsonl"), "--outcomes", str(tmp_path / "large.jsonl")]
    code, out, err = run(capsys, "demo", *files, "--price", "large=20", "--budget", "8", "--queries", "120")
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and summary["models"] == ["small", "large"] and summary["queries"] == 120
    assert summary["always_strong_cost"] == 20 and 0 < summary["escalated_share"] < 1
    assert "random routing, same cost" in out and "always large" in out
    code, _, err = run(capsys, "demo", "--outcomes", str(tmp_path / "small.jsonl"), "--price", "large=20")
    assert code == 1 and "--price needs two outcome files" in err
