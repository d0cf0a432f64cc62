"""wrk as the load generator: written in C, it keeps its own CPU out of the servers' way (a Python client at
32 connections needs about a core of this machine's two, and then it sets the pace, not the server).

    with CpuMeter(pids) as meter:
        result = run_wrk("http://127.0.0.1:8080", bodies, concurrency=32, seconds=20, work=Path("/tmp"))
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("bodies.lua")
_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    failed: int
    """Replies that were not 2xx/3xx, and socket errors (connect, read, write, timeout)."""
    mean_ms: float
    p50_ms: float
    p99_ms: float

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.seconds

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "throughput_rps": self.throughput_rps}


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("the gateway benchmark drives load with wrk: apt-get install -y wrk")
    return found


def run_wrk(
    base: str, bodies: list[bytes], concurrency: int, seconds: float, work: Path, key: str | None = None
) -> WrkResult:
    """POST `bodies` in turn to BASE/v1/chat/completions over `concurrency` connections for `seconds`."""
    listing = work / "wrk-bodies.jsonl"
    listing.write_bytes(b"".join(body + b"\n" for body in bodies))
    command = [wrk_binary(), "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", "--timeout", "60s"]
    command += ["-s", str(SCRIPT), base, "--", str(listing), *([key] if key else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse(done.stdout)


def parse(report: str) -> WrkResult:
    """The figures of wrk's text report."""
    counted = re.search(r"(\d+) requests in ([\d.]+)(\w+),", report)
    if counted is None:
        raise RuntimeError(f"wrk sent nothing:\n{report}")
    seconds = float(counted.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[counted.group(3)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    failed = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    return WrkResult(
        requests=int(counted.group(1)),
        seconds=seconds,
        failed=failed,
        mean_ms=_ms(r"Latency\s+([\d.]+)(\w+)", report),
        p50_ms=_ms(r"50%\s+([\d.]+)(\w+)", report),
        p99_ms=_ms(r"99%\s+([\d.]+)(\w+)", report),
    )


def _ms(pattern: str, report: str) -> float:
    found = re.search(pattern, report)
    if found is None:
        raise RuntimeError(f"no {pattern!r} in wrk's report:\n{report}")
    return float(found.group(1)) * _UNITS_MS[found.group(2)]
