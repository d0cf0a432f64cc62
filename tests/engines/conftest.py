"""Session-scoped real engines: each starts once (vLLM takes about a minute), serves every test, then stops.

A missing engine fails the tests instead of skipping them: they run only from a dedicated target, where an
absent engine means a broken set-up that must be noticed, not an optional feature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.engines.servers import Engine, EngineError, llamacpp_missing, start_llamacpp, start_vllm, vllm_missing


def _serve(
    name: str, start: Callable[[Path], Engine], missing: Callable[[], str | None], logs: pytest.TempPathFactory
) -> Iterator[str]:
    if reason := missing():
        pytest.fail(f"{name} is not set up ({reason}): run tests/engines/setup.sh", pytrace=False)
    try:
        engine = start(logs.mktemp("engine-logs"))
    except EngineError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield engine.v1
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """OpenAI base URL (http://127.0.0.1:PORT/v1) of vLLM serving the tiny Llama as `tiny-llama`."""
    yield from _serve("vLLM", start_vllm, vllm_missing, tmp_path_factory)


@pytest.fixture(scope="session")
def llamacpp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """OpenAI base URL (http://127.0.0.1:PORT/v1) of llama.cpp serving SmolLM2-135M as `smollm2`."""
    yield from _serve("llama.cpp", start_llamacpp, llamacpp_missing, tmp_path_factory)
