"""The gateway as clients meet it, over real HTTP on loopback: streaming in OpenAI's event format, every honoured
chat parameter passed to the backend as given (the refused ones are in test_hostile_requests), and real
third-party clients used unmodified: the official `openai` client (sync, async, streaming), LangChain's
`ChatOpenAI` (invoke, batch, stream) and LiteLLM's SDK."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from allocator.base import Policy
from oracle.outcomes import Question
from service.app import create_app
from service.server_thread import ServerThread
from service.settings import Settings
from tests.fake_backends import fake_backend

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM would fetch its price list at import
os.environ.setdefault("LITELLM_TELEMETRY", "False")


@pytest.fixture(scope="module")
def url(four_samples: Policy, backend: str) -> Iterator[str]:
    with ServerThread(create_app(Settings(backends=[backend]), policy=four_samples)) as served:
        yield served


def events(response: httpx.Response) -> list[Any]:
    """The data of each server-sent event, JSON decoded, `[DONE]` as is."""
    assert response.headers["content-type"].startswith("text/event-stream")
    data = [line.removeprefix("data: ") for line in response.text.split("\n") if line.startswith("data: ")]
    assert response.text.endswith("\n\n") and data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]] + ["[DONE]"]


def ask(question: Question, **extra: Any) -> dict[str, Any]:
    return {"model": "apportion", "messages": [{"role": "user", "content": question.question}], "seed": 3, **extra}


def test_a_streamed_reply_carries_the_same_answer_in_openais_chunks(url: str, questions: list[Question]) -> None:
    plain = httpx.post(url + "/v1/chat/completions", json=ask(questions[0]), timeout=30).json()
    streamed = httpx.post(url + "/v1/chat/completions", json=ask(questions[0], stream=True), timeout=30)
    chunks = events(streamed)[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == plain["choices"][0]["message"]["content"], "the same seeded samples, the same vote, the same text"
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["choices"][0]["delta"] == {}
    assert last["apportion"]["answer"] == plain["apportion"]["answer"] and last["apportion"]["samples"] == 4
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1]) and "usage" not in last

    with_usage = events(
        httpx.post(
            url + "/v1/chat/completions",
            json=ask(questions[0], stream=True, stream_options={"include_usage": True}),
            timeout=30,
        )
    )[:-1]
    assert with_usage[-1]["choices"] == [] and with_usage[-1]["usage"] == plain["usage"]
    assert all(c["usage"] is None for c in with_usage[:-1])


def test_errors_before_the_first_byte_keep_the_json_format(url: str, questions: list[Question]) -> None:
    for body, status, param in (
        ({"model": "nope", "messages": [{"role": "user", "content": "hi"}], "stream": True}, 404, "model"),
        ({**ask(questions[0]), "stream_options": {"include_usage": True}}, 400, "stream_options"),
        ({**ask(questions[0], stream=True), "tools": []}, 400, "tools"),
    ):
        reply = httpx.post(url + "/v1/chat/completions", json=body)
        assert reply.status_code == status and reply.headers["content-type"] == "application/json"
        assert reply.json()["error"]["param"] == param


def test_sampling_parameters_reach_the_backend_as_given(four_samples: Policy, questions: list[Question]) -> None:
    """A backend that records what it was sent: every honoured parameter arrives, as the client wrote it."""
    given = {
        "temperature": 0.6,
        "top_p": 0.9,
        "max_completion_tokens": 77,
        "stop": ["\n\n"],
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "logit_bias": {"50256": -100},
        "response_format": {"type": "json_object"},
        "user": "someone",
    }
    recorder = fake_backend()
    with ServerThread(recorder) as backend:
        settings = Settings(backends=[backend + "/v1"])
        with ServerThread(create_app(settings, policy=four_samples)) as gateway:
            reply = httpx.post(gateway + "/v1/chat/completions", json=ask(questions[2], **given), timeout=30)
    assert reply.status_code == 200, reply.text
    [sent] = recorder.state.bodies
    expected = {**given, "max_tokens": 77, "seed": 3, "n": 4}
    expected.pop("max_completion_tokens")
    assert {key: sent[key] for key in expected} == expected


def test_the_openai_client_sync_async_and_streaming(url: str, questions: list[Question]) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
    messages: Any = [{"role": "user", "content": questions[3].question}]
    reply = client.chat.completions.create(model="apportion", messages=messages, seed=5)
    decision = reply.model_extra["apportion"]  # type: ignore[index]
    assert reply.choices[0].message.content and decision["samples"] == 4

    async def both() -> tuple[Any, list[Any]]:
        async_client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused")
        answered = await async_client.chat.completions.create(model="apportion", messages=messages, seed=5)
        stream = await async_client.chat.completions.create(
            model="apportion", messages=messages, seed=5, stream=True, stream_options={"include_usage": True}
        )
        return answered, [chunk async for chunk in stream]

    answered, async_chunks = asyncio.run(both())
    assert answered.choices[0].message.content == reply.choices[0].message.content
    streamed = list(client.chat.completions.create(model="apportion", messages=messages, seed=5, stream=True))
    for chunks in (streamed, async_chunks):
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == reply.choices[0].message.content
        final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
        assert final.model_extra["apportion"]["answer"] == decision["answer"]  # type: ignore[index]
    assert async_chunks[-1].usage is not None and async_chunks[-1].usage.completion_tokens > 0


def test_langchain_chat_openai_invoke_batch_and_stream(url: str, questions: list[Question]) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(model="apportion", base_url=url + "/v1", api_key="unused", seed=5)  # type: ignore[arg-type]
    answer = chat.invoke(questions[4].question)
    assert isinstance(answer.content, str) and answer.content
    batch = chat.batch([questions[5].question, questions[6].question])
    assert all(isinstance(m.content, str) and m.content for m in batch)
    streamed = "".join(str(chunk.content) for chunk in chat.stream(questions[4].question))
    assert streamed == answer.content, "the same seeded samples, streamed"


@pytest.mark.filterwarnings("ignore::UserWarning")  # LiteLLM's own pydantic serializer warnings
def test_litellm_sdk_as_a_client(url: str, questions: list[Question]) -> None:
    import litellm

    messages = [{"role": "user", "content": questions[7].question}]
    reply = litellm.completion(
        model="openai/apportion", api_base=url + "/v1", api_key="unused", messages=messages, seed=5
    )
    content = reply.choices[0].message.content
    assert content
    decision = getattr(reply, "apportion", None) or reply.model_extra.get("apportion")
    assert decision is not None and decision["samples"] == 4 and decision["answer"] in content
    streamed = litellm.completion(
        model="openai/apportion", api_base=url + "/v1", api_key="unused", messages=messages, seed=5, stream=True
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed) == content


def test_hostile_pass_through_values_are_refused_before_any_backend(
    four_samples: Policy, questions: list[Question]
) -> None:
    """What is passed to the backends is bounded: a logit_bias of thousands of entries, a bias or penalty out of
    OpenAI's range, or a stream option nobody defined, is a 400 and no backend is asked."""
    recorder = fake_backend()
    with ServerThread(recorder) as backend:
        settings = Settings(backends=[backend + "/v1"])
        with ServerThread(create_app(settings, policy=four_samples)) as gateway:
            for extra in (
                {"logit_bias": {str(i): 1 for i in range(301)}},
                {"logit_bias": {"1": 1000}},
                {"presence_penalty": 9},
                {"stream": True, "stream_options": {"include_usage": True, "evil": 1}},
            ):
                reply = httpx.post(gateway + "/v1/chat/completions", json=ask(questions[0], **extra))
                assert reply.status_code == 400, extra
                assert reply.json()["error"]["type"] == "invalid_request_error"
    assert recorder.state.calls == 0
