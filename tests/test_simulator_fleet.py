"""One simulator process serving several models, each from its own recorded samples, over real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from files.outcomes import write_jsonl
from oracle.synthetic import synthetic_outcomes
from oracle.votes import token_count
from service.server_thread import ServerThread
from service.simulator import Simulator, create_simulator_app
from tests.test_cli import run

WEAK = list(synthetic_outcomes(6, 8, seed=2))
STRONG = list(synthetic_outcomes(6, 8, seed=2, model="strong", skill=6.0))


def test_each_model_answers_from_its_own_samples_and_unknown_models_are_refused() -> None:
    simulator = Simulator.fleet({"small": WEAK, "large": STRONG})
    question = WEAK[0]
    with ServerThread(create_simulator_app(simulator)) as url, httpx.Client(base_url=url) as client:
        listed = client.get("/v1/models").json()
        assert [model["id"] for model in listed["data"]] == ["small", "large"]
        replies = {}
        for name, records in (("small", WEAK), ("large", STRONG)):
            body = {"model": name, "messages": [{"role": "user", "content": question.question}], "n": 8, "seed": 0}
            reply = client.post("/v1/chat/completions", json=body).json()
            texts = [choice["message"]["content"] for choice in reply["choices"]]
            recorded = {s.text for s in records[0].samples if s.text}
            assert {text for text in texts if text in recorded} == set(texts) - {"I could not work this one out."}
            assert reply["usage"]["completion_tokens"] == sum(token_count(text) for text in texts)
            assert reply["model"] == name
            replies[name] = texts
        assert replies["small"] != replies["large"]
        missing = client.post(
            "/v1/chat/completions", json={"model": "medium", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == "The model `medium` does not exist."


def test_one_model_still_answers_whatever_model_a_request_names() -> None:
    with ServerThread(create_simulator_app(Simulator(WEAK))) as url, httpx.Client(base_url=url) as client:
        body = {"model": "anything", "messages": [{"role": "user", "content": WEAK[1].question}]}
        assert client.post("/v1/chat/completions", json=body).status_code == 200
        assert [model["id"] for model in client.get("/v1/models").json()["data"]] == ["simulated"]


def test_two_files_with_one_model_name_are_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_jsonl(first, (q.to_record() for q in WEAK))
    write_jsonl(second, (q.to_record() for q in WEAK))
    code, _, err = run(capsys, "simulate", "--outcomes", str(first), "--outcomes", str(second), "--port", "1")
    assert code == 1
    assert "given twice" in err and "Traceback" not in err
