"""The gateway in front of real engines: one request with n = k to vLLM, k requests to llama.cpp (which
ignores n), and the simulator's replies shaped like vLLM's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from allocator.base import Policy
from allocator.baselines import Uniform
from allocator.data import Outcomes
from allocator.routing import FixedCascade
from oracle.fleet import align
from oracle.synthetic import synthetic_outcomes
from service.app import create_app
from service.server_thread import ServerThread
from service.settings import Settings
from service.simulator import Simulator, create_simulator_app
from tests.engines.servers import LLAMACPP_MODEL, VLLM_MODEL

QUESTION = {"question": "What is 12 plus 30?"}


@pytest.fixture(scope="module")
def four_samples() -> Policy:
    return Uniform().fit(Outcomes.read(synthetic_outcomes(40, 8), (1, 2, 4, 8)), 4.0)


def gateway(policy: Policy, backends: list[str]) -> ServerThread:
    settings = Settings(model=Path("."), backends=backends, max_tokens=24, temperature=1.0)
    return ServerThread(create_app(settings, policy=policy))


def n_histogram(base: str) -> tuple[float, float]:
    """vLLM's own record of the `n` its requests asked for: (count of requests, sum of n)."""
    text = httpx.get(base.removesuffix("/v1") + "/metrics").text
    count = sum(float(v) for v in re.findall(r"^vllm:request_params_n_count\{[^}]*\} (\S+)", text, re.M))
    total = sum(float(v) for v in re.findall(r"^vllm:request_params_n_sum\{[^}]*\} (\S+)", text, re.M))
    return count, total


def test_vllm_gets_one_request_with_n_equal_to_k(four_samples: Policy, vllm_url: str) -> None:
    before = n_histogram(vllm_url)
    with gateway(four_samples, [vllm_url]) as url:
        reply = httpx.post(
            url + "/v1/chat/completions",
            timeout=120,
            json={"model": "apportion", "seed": 7, "messages": [{"role": "user", "content": "2+2?"}]},
        )
    after = n_histogram(vllm_url)
    body = reply.json()
    assert reply.status_code == 200, body
    assert body["apportion"]["samples"] == 4 and body["apportion"]["failed_samples"] == 0
    assert (after[0] - before[0], after[1] - before[1]) == (1, 4), "one request asking for n = 4"
    assert body["usage"]["completion_tokens"] >= 4 and body["usage"]["prompt_tokens"] > 0


def test_llamacpp_ignores_n_so_the_gateway_fans_out(four_samples: Policy, llamacpp_url: str) -> None:
    with gateway(four_samples, [llamacpp_url]) as url:
        first = httpx.post(url + "/v1/solve", json=QUESTION, timeout=300).json()
        second = httpx.post(url + "/v1/solve", json=QUESTION, timeout=300).json()
    assert first["samples"] == second["samples"] == 4, (first, second)
    assert first["text"].strip(), "real generated text"


def test_one_gateway_in_front_of_both_engines(four_samples: Policy, vllm_url: str, llamacpp_url: str) -> None:
    with gateway(four_samples, [vllm_url, llamacpp_url]) as url:
        replies = [httpx.post(url + "/v1/solve", json=QUESTION, timeout=300).json() for _ in range(4)]
        health = httpx.get(url + "/readyz").json()
    assert all(reply["samples"] == 4 for reply in replies), replies
    assert health["ready"] and all(state.startswith("up") for state in health["backends"].values())


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    with ServerThread(create_simulator_app(Simulator(synthetic_outcomes(5, 4)))) as url:
        yield url + "/v1"


def keys(value: object, prefix: str = "") -> set[str]:
    """Every field path of a reply (lists by their first element), without the values."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found |= {prefix + key} | keys(item, prefix + key + ".")
    elif isinstance(value, list) and value:
        found |= keys(value[0], prefix + "0.")
    return found


@pytest.mark.parametrize("route", ["chat/completions", "completions"])
def test_the_simulator_answers_in_vllms_shapes(vllm_url: str, simulator: str, route: str) -> None:
    body: dict[str, object] = {"n": 2, "seed": 1, "max_tokens": 8, "temperature": 1.0}
    if route == "completions":
        body["prompt"] = "What is 12 plus 30?"
    else:
        body["messages"] = [{"role": "user", "content": "What is 12 plus 30?"}]
    real = httpx.post(f"{vllm_url}/{route}", json=body | {"model": "tiny-llama"}, timeout=120).json()
    ours = httpx.post(f"{simulator}/{route}", json=body | {"model": "simulated"}).json()
    missing = keys(ours) - keys(real)
    assert not missing, f"the simulator sends fields vLLM does not: {missing}"
    needed = {
        "id",
        "object",
        "created",
        "model",
        "choices.0.index",
        "choices.0.finish_reason",
        "usage.prompt_tokens",
        "usage.completion_tokens",
        "usage.total_tokens",
    }
    needed |= {"choices.0.message.content", "choices.0.message.role"} if route != "completions" else {"choices.0.text"}
    assert needed <= keys(ours) & keys(real)
    assert ours["object"] == real["object"] and len(ours["choices"]) == len(real["choices"]) == 2  # type: ignore[arg-type]
    models_real = httpx.get(f"{vllm_url}/models").json()["data"][0]
    models_ours = httpx.get(f"{simulator}/models").json()["data"][0]
    assert set(models_ours) <= set(models_real)
    assert httpx.get(simulator.removesuffix("/v1") + "/health").status_code == 200


def generation_tokens(base: str) -> float:
    """vLLM's own count of the tokens it generated."""
    text = httpx.get(base.removesuffix("/v1") + "/metrics").text
    return sum(float(v) for v in re.findall(r"^vllm:generation_tokens_total\{[^}]*\} (\S+)", text, re.M))


def test_a_cascade_across_two_engines_is_charged_the_tokens_they_report(vllm_url: str, llamacpp_url: str) -> None:
    """llama.cpp's SmolLM2 as the cheap model, vLLM's tiny Llama at 20 times the price: each query samples the
    cheap one first and escalates when its answers disagree (with models this small, they rarely agree); in
    tokens, each model is charged its price times the completion tokens its engine reported, which for vLLM
    is its own metric's count."""
    cheap, dear = LLAMACPP_MODEL, VLLM_MODEL
    records = [
        (cheap, synthetic_outcomes(60, 8, seed=3, model=cheap)),
        (dear, synthetic_outcomes(60, 8, seed=3, model=dear, skill=4.5)),
    ]
    data = Outcomes.of_fleet(align(records), (1, 2, 4, 8), {cheap: 1.0, dear: 20.0}, "samples")
    policy = FixedCascade().fit(data, 40.0)
    action = policy.actions_[policy.column_]
    assert (action.model, action.then) == (cheap, dear)
    settings = Settings(
        model=Path("."), backends=[llamacpp_url, vllm_url], max_tokens=16, temperature=1.0, cost="tokens"
    )
    before = generation_tokens(vllm_url)
    with ServerThread(create_app(settings, policy=policy)) as url:
        ready = httpx.get(url + "/readyz").json()
        replies = [
            httpx.post(
                url + "/v1/chat/completions",
                timeout=300,
                json={
                    "model": "apportion",
                    "seed": i,
                    "messages": [{"role": "user", "content": f"What is {i} plus 30?"}],
                },
            ).json()
            for i in range(4)
        ]
        budget = httpx.get(url + "/v1/budget").json()
    generated = generation_tokens(vllm_url) - before
    assert ready["models"] == {cheap: "up", dear: "up"}
    used = [reply["apportion"]["models"] for reply in replies]
    assert all(next(iter(models)) == cheap and models[cheap]["samples"] == action.samples for models in used)
    escalated = [models for models in used if dear in models]
    assert escalated, "answers this small disagree: the dear model is asked"
    assert all(models[dear]["samples"] == action.then_samples for models in escalated)
    reported = {m: sum(models.get(m, {}).get("tokens", 0) for models in used) for m in (cheap, dear)}
    assert reported[dear] == generated, "the gateway's count of vLLM's tokens is vLLM's own"
    rows = {row["model"]: row for row in budget["models"]}
    assert {m: rows[m]["units"] for m in rows} == reported
    assert rows[dear]["cost"] == 20.0 * generated and rows[cheap]["cost"] == reported[cheap]
    assert budget["cost"] == pytest.approx(reported[cheap] + 20.0 * generated)
