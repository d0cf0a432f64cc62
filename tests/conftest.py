"""Shared fixtures: generated outcome files, and the recorded data beside the checkout when it is there."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from allocator.adaptive import Adaptive
from allocator.base import Policy
from allocator.data import Outcomes
from files.outcomes import read_outcomes, write_jsonl
from oracle.outcomes import Question
from oracle.synthetic import synthetic_outcomes
from service.server_thread import ServerThread, free_port
from service.simulator import Simulator, create_simulator_app

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
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server (.ci/run does)")
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


class RedisServer:
    """redis-server in a subprocess; `stop` and `start` let tests take it away and bring it back (with its data:
    append-only persistence, as a production ledger would run)."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary, self.directory, self.port = binary, directory, free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            str(self.directory),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        while time.monotonic() < deadline:
            try:
                if client.ping():  # not just listening: done loading its append-only file
                    return
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def flush(self) -> None:
        redis.Redis.from_url(self.url).flushall()


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
