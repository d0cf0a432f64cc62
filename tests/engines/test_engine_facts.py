"""Facts about the real engines that the gateway relies on, checked against running servers.

The gateway asks an engine for n samples per query and accounts for the tokens spent; these tests pin down how
each engine actually answers that: vLLM fans n out with seeds seed..seed+n-1 and sums the completion tokens of
all choices, llama.cpp ignores n and returns one choice. If an engine release changes any of this, the gateway's
assumptions must be revisited, and these tests say which one broke.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.engines.servers import LLAMACPP_MODEL, VLLM_MODEL

PROMPT = [{"role": "user", "content": "What is 12 plus 30?"}]
# Explicit sampling parameters: omitted ones would come from the model's generation_config under vLLM's default.
SAMPLING = {"temperature": 1.0, "top_p": 1.0, "max_tokens": 16}


def chat(base: str, model: str, **params: Any) -> dict[str, Any]:
    response = httpx.post(f"{base}/chat/completions", json={"model": model, "messages": PROMPT, **params}, timeout=120)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def root(base: str) -> str:
    return base.removesuffix("/v1")


# --- vLLM ---------------------------------------------------------------------------------------------


def test_vllm_health_models_and_metrics(vllm_url: str) -> None:
    health = httpx.get(f"{root(vllm_url)}/health")
    assert health.status_code == 200 and health.content == b""

    models = httpx.get(f"{vllm_url}/models").json()["data"]
    assert [(m["id"], m["object"], m["owned_by"], m["max_model_len"]) for m in models] == [
        (VLLM_MODEL, "model", "vllm", 256)
    ]

    metrics = httpx.get(f"{root(vllm_url)}/metrics").text
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:request_params_n"):
        assert name in metrics


def test_vllm_n_returns_n_choices_and_sums_their_tokens(vllm_url: str) -> None:
    body = chat(vllm_url, VLLM_MODEL, n=8, seed=5, logprobs=True, **{**SAMPLING, "max_tokens": 48})
    choices = body["choices"]
    assert sorted(c["index"] for c in choices) == list(range(8))
    # logprobs lists one entry per generated token, the EOS of a choice that stops included.
    per_choice = [len(c["logprobs"]["content"]) for c in choices]
    for c, k in zip(choices, per_choice, strict=True):
        assert c["message"]["role"] == "assistant" and isinstance(c["message"]["content"], str)
        if c["finish_reason"] == "length":
            assert k == 48
        else:
            assert (c["finish_reason"], c["stop_reason"]) == ("stop", None)
            assert c["logprobs"]["content"][-1]["token"] == "</s>" and 1 <= k <= 48
    # The usage sums the choices' tokens and counts the prompt once.
    usage = body["usage"]
    assert usage["completion_tokens"] == sum(per_choice)
    assert usage["total_tokens"] == usage["prompt_tokens"] + sum(per_choice)


def test_vllm_refuses_greedy_n(vllm_url: str) -> None:
    """n > 1 needs sampling: temperature 0 with n = 4 is a 400, not four identical answers."""
    response = httpx.post(
        f"{vllm_url}/chat/completions",
        json={"model": VLLM_MODEL, "messages": PROMPT, "n": 4, "temperature": 0.0, "max_tokens": 4},
    )
    assert response.status_code == 400
    assert "greedy" in response.json()["error"]["message"]


def test_vllm_unknown_model_is_404(vllm_url: str) -> None:
    response = httpx.post(f"{vllm_url}/chat/completions", json={"model": "nope", "messages": PROMPT, "max_tokens": 4})
    assert response.status_code == 404


def test_vllm_child_i_uses_seed_plus_i(vllm_url: str) -> None:
    fanned = chat(vllm_url, VLLM_MODEL, n=4, seed=123, **SAMPLING)
    singles = [chat(vllm_url, VLLM_MODEL, n=1, seed=123 + i, **SAMPLING) for i in range(4)]
    texts = [c["message"]["content"] for c in sorted(fanned["choices"], key=lambda c: c["index"])]
    assert texts == [s["choices"][0]["message"]["content"] for s in singles]
    assert len(set(texts)) > 1  # the children really differ
    assert fanned["usage"]["completion_tokens"] == sum(s["usage"]["completion_tokens"] for s in singles)
    # and a seeded request is reproducible
    assert chat(vllm_url, VLLM_MODEL, n=4, seed=123, **SAMPLING)["choices"] == fanned["choices"]


def metric(base: str, name: str) -> float:
    lines = httpx.get(f"{root(base)}/metrics").text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name + "{"))


def test_vllm_children_share_the_prompt_cache(vllm_url: str) -> None:
    """Automatic prefix caching is on: the n children reuse the prompt's full KV blocks."""
    before = metric(vllm_url, "vllm:prefix_cache_hits_total")
    long_prompt = [{"role": "user", "content": "What is 12 plus 30? " * 20}]
    payload = {"model": VLLM_MODEL, "messages": long_prompt, "n": 4, "seed": 1, **SAMPLING, "max_tokens": 2}
    httpx.post(f"{vllm_url}/chat/completions", json=payload, timeout=120).raise_for_status()
    assert metric(vllm_url, "vllm:prefix_cache_hits_total") > before


def test_vllm_completions_choice_fields(vllm_url: str) -> None:
    response = httpx.post(
        f"{vllm_url}/completions",
        json={"model": VLLM_MODEL, "prompt": "What is 12 plus 30?", "n": 2, "seed": 7, **SAMPLING},
        timeout=120,
    )
    response.raise_for_status()
    choices = response.json()["choices"]
    assert len(choices) == 2
    for c in choices:
        assert {"index", "text", "logprobs", "finish_reason", "stop_reason"} <= c.keys()


# --- llama.cpp ----------------------------------------------------------------------------------------


def test_llamacpp_models_and_no_health(llamacpp_url: str) -> None:
    models = httpx.get(f"{llamacpp_url}/models").json()["data"]
    assert [m["id"] for m in models] == [LLAMACPP_MODEL]
    # No /health endpoint: servers.py polls /v1/models instead.
    assert httpx.get(f"{root(llamacpp_url)}/health").status_code == 404


def test_llamacpp_ignores_n_and_honours_seed(llamacpp_url: str) -> None:
    """A seeded request repeats itself once the prompt is warm.

    llama-cpp-python keeps the previous request's KV cache and re-evaluates only what differs: a cold prompt is
    evaluated in one batch, a warm one token by token, and the logits differ in their last bits, enough to change
    a sample drawn at temperature 1. So the first call only warms the cache; the two after it are compared.
    """
    chat(llamacpp_url, LLAMACPP_MODEL, n=1, seed=7, **SAMPLING)
    body = chat(llamacpp_url, LLAMACPP_MODEL, n=4, seed=123, **SAMPLING)
    [choice] = body["choices"]  # one choice, whatever n asks for
    assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].strip()
    assert choice["finish_reason"] in {"stop", "length"}
    assert 1 <= body["usage"]["completion_tokens"] <= SAMPLING["max_tokens"]
    again = chat(llamacpp_url, LLAMACPP_MODEL, n=4, seed=123, **SAMPLING)
    assert again["choices"][0]["message"] == choice["message"]
