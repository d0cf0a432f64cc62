"""Processes the benchmarks and the tests start and measure: `apportion` servers, a private redis-server, and
how much CPU each of them used.

Servers run as separate processes: in one process the GIL would serialise them and the numbers would mean
nothing. Each is stopped (terminated, then killed) however the block that started it ends.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from service.server_thread import free_port


def apportion_command() -> str:
    """The `apportion` script next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "apportion"
    found = str(beside) if beside.exists() else shutil.which("apportion")
    if found is None:
        raise SystemExit("apportion is not installed: pip install -e . first")
    return found


@contextmanager
def server(
    args: list[str], health: str, log: Path, env: dict[str, str] | None = None, program: list[str] | None = None
) -> Iterator[int]:
    """Run `apportion ARGS` (or `program ARGS`) until the block ends; yields its pid once `health` answers 200."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("APPORTION_")} | (env or {})
    command = [*(program or [apportion_command()]), *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=clean)
    try:
        _wait_ready(proc, health, log)
        yield proc.pid
    finally:
        _stop(proc)


@contextmanager
def simulator(outcomes: Path, work: Path, latency_ms: float) -> Iterator[tuple[str, int]]:
    """`apportion simulate` replaying `outcomes` on a free port; yields (base URL without /v1, pid)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = ["simulate", "--outcomes", str(outcomes), "--port", str(port), "--latency-ms", str(latency_ms)]
    with server(command, url + "/health", work / f"simulator-{port}.log") as pid:
        yield url, pid


def _wait_ready(proc: subprocess.Popen[bytes], health: str, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(health, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{health} not ready after {timeout:g} s:\n{log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RedisServer:
    """A private redis-server on a free loopback port, append-only as a production ledger runs:
    `stop`/`start` take it away and bring it back with its data, `kill` is a SIGKILL, `flush` empties it."""

    def __init__(self, directory: Path, fsync: str | None = "always") -> None:
        """`fsync`: how the append-only file is synced (`always`, or `everysec` as Redis defaults to, which
        loses up to a second on a crash); None: no persistence at all."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
        self.binary, self.directory, self.fsync, self.port = binary, directory, fsync, free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = (
            ["--appendonly", "no"] if self.fsync is None else ["--appendonly", "yes", "--appendfsync", self.fsync]
        )
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence]
        self.process = subprocess.Popen(
            [*command, "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():  # not just listening: done loading its append-only file
                    return
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None

    def kill(self) -> None:
        """As a crash would: no chance to write anything more."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def flush(self) -> None:
        redis.Redis.from_url(self.url).flushall()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot, to tell our processes' load from anyone else's."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


@dataclass
class CpuMeter:
    """Cores each process kept busy over an interval (1.0 = one core flat out). `client` is this process and
    the children it waited for meanwhile (the load generator); `other` is everyone else."""

    pids: dict[str, int]

    def __enter__(self) -> CpuMeter:
        self.start = time.perf_counter(), time.process_time() + children_cpu_seconds(), machine_busy_seconds()
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.start[0]
        used = {name: cpu_seconds(pid) - self.before[name] for name, pid in self.pids.items()}
        used["client"] = time.process_time() + children_cpu_seconds() - self.start[1]
        used["other"] = max(machine_busy_seconds() - self.start[2] - sum(used.values()), 0.0)
        self.seconds = used
        self.cores = {name: round(seconds / self.wall, 3) for name, seconds in used.items()}


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process in MiB (or its peak, VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_at_start": os.getloadavg(),
    }
