"""`apportion serve`, `simulate` and `key` as users run them: real processes, real ports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bench.processes import RedisServer
from cli.main import main
from service.server_thread import free_port
from service.tenants import key_hash
from tests.test_cli import run

APPORTION = [sys.executable, "-m", "cli"]


@pytest.fixture(scope="module")
def model_dir(example_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "adaptive"
    assert main(["train", "--outcomes", str(example_file), "--budget", "4", "--folds", "2", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "--model (or APPORTION_MODEL): Field required"),
        (["--model", "nowhere", "--backend", "http://127.0.0.1:9/v1"], "not a model directory"),
        (["--backend", "ftp://x"], "--backend (or APPORTION_BACKENDS): 'ftp://x' is not an http(s) URL"),
        (["--backend", "http://127.0.0.1:9/v1", "--workers", "2"], "--workers > 1 needs --redis"),
        (["--backend", "http://127.0.0.1:9/v1", "--target-samples", "500"], "--target-samples (or APPORTION_TARGET"),
        (["--backend", "http://127.0.0.1:9/v1", "--target-samples", "0.2"], "out of reach"),
    ],
)
def test_bad_settings_stop_start_up_with_one_line(
    capsys: pytest.CaptureFixture[str], model_dir: Path, argv: list[str], says: str
) -> None:
    if argv and argv[0] == "--backend":
        argv = ["--model", str(model_dir), *argv]
    code, _, err = run(capsys, "serve", *argv)
    assert code == 1 and says in err and len(err.strip().splitlines()) == 1


def test_key_prints_a_key_whose_hash_is_the_entry(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "key", "--tenant", "search", "--budget", "500")
    entry = json.loads(out)
    secret = err.strip().splitlines()[-1]
    assert code == 0 and entry == {"tenant": "search", "key_sha256": key_hash(secret), "budget": 500}
    code, out, _ = run(capsys, "key", "--tenant", "lab", "--budget", "2.5", "--budget-period", "daily")
    assert code == 0 and json.loads(out)["budget_period"] == "daily" and json.loads(out)["budget"] == 2.5
    code, _, err = run(capsys, "key", "--tenant", "lab", "--budget-period", "daily")
    assert code == 1 and "--budget-period needs a --budget" in err


@contextmanager
def process(argv: list[str], health: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(APPORTION + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{argv[0]} did not start: {proc.stderr.read() if proc.stderr else b''!r}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_simulate_and_serve_with_two_workers_count_every_request_once(
    example_file: Path, model_dir: Path, redis_server: RedisServer
) -> None:
    redis_server.flush()
    sim_port, port = free_port(), free_port()
    simulate = ["simulate", "--outcomes", str(example_file), "--port", str(sim_port)]
    serve = [
        "serve",
        "--model",
        str(model_dir),
        "--backend",
        f"http://127.0.0.1:{sim_port}/v1",
        "--port",
        str(port),
        "--workers",
        "2",
        "--redis",
        redis_server.url,
        "--log-level",
        "warning",
    ]
    with (
        process(simulate, f"http://127.0.0.1:{sim_port}/health"),
        process(serve, f"http://127.0.0.1:{port}/healthz"),
    ):
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as client:  # one connection per request, to spread over the workers
            for index in range(24):
                reply = client.post(
                    "/v1/solve",
                    json={"question": f"Ava has {index} coins. How many now?"},
                    headers={"Connection": "close"},
                )
                assert reply.status_code == 200
            metrics = client.get("/metrics").text
            budget = client.get("/v1/budget").json()
    served = re.search(r'^apportion_requests_total\{route="/v1/solve",status="200"\} (\S+)$', metrics, re.M)
    assert served is not None and float(served.group(1)) == 24
    per_query = re.search(r"^apportion_samples_per_request_count (\S+)$", metrics, re.M)
    assert per_query is not None and float(per_query.group(1)) == 24
    assert budget["queries"] == 24 and budget["store"] == "redis"


def test_serve_help_says_the_api_is_open_without_a_tenants_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "Without --tenants the API is open: every caller is admitted" in shown
    assert "--public-metrics" in shown and "--max-in-flight-per-tenant" in shown and "--header-timeout" in shown
