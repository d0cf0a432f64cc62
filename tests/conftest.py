"""Shared fixtures: generated outcome files, and the recorded data beside the checkout when it is there."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from allocator.adaptive import Adaptive
from allocator.base import Policy
from allocator.baselines import Uniform
from allocator.data import Outcomes
from bench.processes import RedisServer
from files.outcomes import read_outcomes, write_jsonl
from oracle.outcomes import Question
from oracle.synthetic import synthetic_outcomes
from service.server_thread import ServerThread
from service.simulator import Simulator, create_simulator_app
from service.tenants import key_hash

SHARED_DATA = Path(os.environ.get("APPORTION_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def recorded(name: str) -> Path:
    """A recorded outcome file from ../shared/data; the test is skipped where the data is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"recorded data {path} is not available")
    return path


@pytest.fixture(scope="session")
def example_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("outcomes") / "example.jsonl"
    write_jsonl(path, (q.to_record() for q in synthetic_outcomes(questions=120, samples=16, seed=7)))
    return path


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server of the suite's own on a free loopback port (.ci/run installs it where missing)."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server (.ci/run does)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


# A trained policy in front of the simulator: what the gateway and dashboard tests serve.
@pytest.fixture(scope="module")
def questions(example_file: Path) -> list[Question]:
    return list(read_outcomes(example_file))


@pytest.fixture(scope="module")
def policy(questions: list[Question]) -> Policy:
    return Adaptive().fit(Outcomes.read(questions, (1, 2, 4, 8, 16)), 4.0)


@pytest.fixture(scope="module")
def backend(questions: list[Question]) -> Iterator[str]:
    with ServerThread(create_simulator_app(Simulator(questions))) as url:
        yield url + "/v1"


@pytest.fixture(scope="module")
def four_samples(example_file: Path) -> Policy:
    """Every query gets 4 samples in one round."""
    return Uniform().fit(Outcomes.read(read_outcomes(example_file), (1, 2, 4, 8)), 4.0)


def tenants_file(directory: Path, *entries: dict[str, object]) -> Path:
    """A tenants file whose entries give each tenant the key `key-NAME`."""
    path = directory / "tenants.json"
    path.write_text(json.dumps([{"key_sha256": key_hash(f"key-{e['tenant']}"), **e} for e in entries]))
    return path


def key(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{tenant}"}
