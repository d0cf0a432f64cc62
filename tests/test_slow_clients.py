"""Slow and idle clients against `apportion serve` as users run it (a real process, real sockets): connections
that send nothing, headers a byte at a time, or half a body are closed by the gateway's timeouts, and a
normal client is served meanwhile."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from allocator.base import Policy
from bench.processes import server
from files.models import save_model
from service.server_thread import ServerThread, free_port
from tests.fake_backends import fake_backend

ASK = {"model": "apportion", "messages": [{"role": "user", "content": "What is 2 + 2?"}]}


@pytest.fixture(scope="module")
def gateway(four_samples: Policy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = tmp_path_factory.mktemp("model") / "uniform"
    save_model(model, four_samples, {"policy": "uniform", "actions": [1, 2, 4, 8], "budget": 4.0})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    timeouts = ["--header-timeout", "1", "--body-timeout", "1", "--keep-alive-timeout", "1"]
    with ServerThread(fake_backend("ok")) as backend:
        command = ["serve", "--model", str(model), "--backend", backend + "/v1", "--port", str(port), *timeouts]
        log = tmp_path_factory.mktemp("logs") / "gateway.log"
        program = [sys.executable, "-m", "cli"]
        with server([*command, "--log-level", "warning"], url + "/healthz", log, program=program):
            yield url


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(5)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the gateway has closed the connection (what it said first, if anything, is read and dropped)."""
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def test_idle_trickling_and_half_sent_requests_are_closed_while_others_are_served(gateway: str) -> None:
    port = int(gateway.rsplit(":", 1)[1])
    idle = [connect(port) for _ in range(200)]
    trickling = [connect(port) for _ in range(10)]
    half_body = [connect(port) for _ in range(10)]
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += b"Content-Length: 900\r\n\r\n"
    for sock in half_body:
        sock.sendall(head + b"{")
    started, served, refused_bytes = time.monotonic(), 0, 0
    while time.monotonic() - started < 2.5:  # normal traffic while the slow ones are held, then dropped
        for sock in trickling:
            try:
                sock.send(b"X")  # a byte of a header, now and then: never a whole request
            except (BrokenPipeError, ConnectionResetError):
                refused_bytes += 1
        served += httpx.post(gateway + "/v1/chat/completions", json=ASK, timeout=5).status_code == 200
        time.sleep(0.1)
    replies = [sock.recv(65536) for sock in half_body]
    closed = [closed_by_server(sock) for sock in idle + trickling + half_body]
    for sock in idle + trickling + half_body:
        sock.close()
    assert served >= 10, "normal clients are served throughout"
    assert all(closed), f"{closed.count(False)} of {len(closed)} slow connections still open"
    assert all(reply.startswith(b"HTTP/1.1 408") for reply in replies), "a half-sent body is told why"
