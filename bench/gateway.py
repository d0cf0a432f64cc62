"""Benchmark the gateway as deployed: its added latency and throughput, and how well it keeps the budget.

1. Added latency. The same simulated backend (a fixed delay per request) is asked directly, with n = 4, and
   through the gateway serving a uniform k = 4 model, which makes exactly one backend request with n = 4 per
   query: the difference is what the gateway adds. Measured at several concurrencies, closed loop.
2. Budget adherence. The default (adaptive) policy, trained on one synthetic file, serves questions from
   another, easy ones (levels 1-3) first and hard ones (4-6) after: the controller must still hold the mean
   samples per query on target. The same stream through a gateway whose horizon is huge (no correction)
   shows what the policy spends open loop.

Simulator, gateway and load generator run as separate processes (in one process the GIL would serialise
them and the numbers would mean nothing); each one's CPU use is read from /proc, so a saturated client or a
busy machine shows in the results rather than hiding in them.

    python bench/gateway.py [--quick] [--latency-ms 20] [--concurrency 1 32 256] [--out bench/results/gateway.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from allocator.data import Outcomes
from allocator.registry import DEFAULT_POLICY, POLICIES
from files.models import save_model
from files.outcomes import write_jsonl
from oracle.outcomes import Question
from oracle.synthetic import synthetic_outcomes
from service.server_thread import free_port

ACTIONS = (1, 2, 4, 8, 16, 32)
BUDGET = 4.0
TARGETS_MS = {"p50": 2.0, "p99": 10.0}
JSON_HEADERS = {"content-type": "application/json"}
SHARD = 16  # connections per load-generator client (see clients_for)


# --- processes -------------------------------------------------------------------------------------------


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
    """Run `apportion ARGS` (or `program ARGS`) until the block ends; yields its pid once `health` answers 200.

    Terminated (then killed) however the block ends, so no server outlives the benchmark."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("APPORTION_")} | (env or {})
    command = [*(program or [apportion_command()]), *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=clean)
    try:
        _wait_ready(proc, health, log)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot, to tell our processes' load from anyone else's."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """Cores each process kept busy over an interval (1.0 = one core flat out); `other` is everyone else."""

    pids: dict[str, int]

    def __enter__(self) -> CpuMeter:
        self.start = time.perf_counter(), time.process_time(), machine_busy_seconds()
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.start[0]
        used = {name: cpu_seconds(pid) - self.before[name] for name, pid in self.pids.items()}
        used["client"] = time.process_time() - self.start[1]
        used["other"] = max(machine_busy_seconds() - self.start[2] - sum(used.values()), 0.0)
        self.cores = {name: round(seconds / wall, 3) for name, seconds in used.items()}


# --- data and models -------------------------------------------------------------------------------------


def steps(question: Question) -> int:
    """The synthetic difficulty: "Level {steps}", more steps are harder."""
    return int(str(question.level).split()[-1])


def write_outcomes(path: Path, questions: int, seed: int) -> list[Question]:
    """What `apportion example` writes, kept in memory too."""
    drawn = list(synthetic_outcomes(questions, 32, seed))
    write_jsonl(path, (q.to_record() for q in drawn))
    return drawn


def train(directory: Path, policy_name: str, questions: list[Question]) -> float:
    """Fit and save a model at the benchmark's budget; seconds taken. No cross-validation (`apportion train`
    runs five folds first, minutes for the adaptive policy): serving needs only the fitted policy."""
    started = time.perf_counter()
    policy = POLICIES[policy_name]().fit(Outcomes.read(questions, ACTIONS), BUDGET)
    manifest = {
        "policy": policy_name,
        "actions": list(ACTIONS),
        "budget": BUDGET,
        "description": policy.description(),
        "training_data": {"path": "synthetic (bench/gateway.py)", "questions": len(questions)},
        "metrics": {"protocol": "none: trained by bench/gateway.py without cross-validation"},
    }
    save_model(directory, policy, manifest)
    return time.perf_counter() - started


def shifted_stream(questions: list[Question], n: int, seed: int) -> tuple[list[Question], list[int]]:
    """`n` queries: the first half drawn from levels 1-3, the second from levels 4-6; a random seed each."""
    rng = random.Random(seed)
    easy = [q for q in questions if steps(q) <= 3]
    hard = [q for q in questions if steps(q) >= 4]
    half = n // 2
    stream = [rng.choice(easy) for _ in range(half)] + [rng.choice(hard) for _ in range(n - half)]
    return stream, [rng.randrange(2**31) for _ in stream]


def chat_body(model: str, question: str, seed: int, n: int | None = None) -> bytes:
    """Pre-encoded, so the load generator spends its CPU on HTTP only."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": question}], "seed": seed}
    if n is not None:  # what the gateway itself sends a backend for one round of n samples
        body |= {"n": n, "temperature": 0.8, "top_p": 1.0, "max_tokens": 512}
    return json.dumps(body).encode()


# --- part 1: added latency -------------------------------------------------------------------------------


def clients_for(base: str, concurrency: int) -> list[httpx.AsyncClient]:
    """One httpx client per `SHARD` connections: httpcore's pool scans every connection it holds on every
    request (an expiry check with a poll() each), so one client of 256 connections costs ~6 ms of CPU per
    request here, and the load generator, not the server, would set the pace. Measured: 2.4 ms per request
    at 32 connections in one client, 0.7 ms in clients of 16."""
    shared = ssl.create_default_context()  # unused on http://, but each client would otherwise build one
    count = -(-concurrency // SHARD)
    limits = httpx.Limits(max_connections=SHARD, max_keepalive_connections=SHARD)
    return [httpx.AsyncClient(base_url=base, limits=limits, timeout=120.0, verify=shared) for _ in range(count)]


async def closed_loop(
    clients: list[httpx.AsyncClient], path: str, bodies: Sequence[bytes], concurrency: int
) -> np.ndarray:
    """Every body posted by `concurrency` workers, each sending its next as soon as one returns; seconds each."""
    seconds = np.empty(len(bodies))
    queue = iter(range(len(bodies)))
    failures: list[str] = []

    async def worker(client: httpx.AsyncClient) -> None:
        for i in queue:  # one iterator shared by all workers: each body is sent once
            started = time.perf_counter()
            reply = await client.post(path, content=bodies[i], headers=JSON_HEADERS)
            seconds[i] = time.perf_counter() - started
            if reply.status_code != 200:
                failures.append(f"{reply.status_code}: {reply.text[:200]}")

    await asyncio.gather(*(worker(clients[w // SHARD]) for w in range(concurrency)))
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(bodies)} requests to {path} failed, first {failures[0]}")
    return seconds


async def run_level(
    base: str,
    bodies: Sequence[bytes],
    warmup: Sequence[bytes],
    concurrency: int,
    pids: dict[str, int],
    gateway: bool = False,
) -> dict[str, Any]:
    """Warm up (connections opened, code paths hot), then measure latency, throughput and each process's CPU;
    for the gateway, also where its time went by its own metrics."""
    clients = clients_for(base, concurrency)
    try:
        await closed_loop(clients, "/v1/chat/completions", warmup, concurrency)
        before = await gateway_timers(clients[0]) if gateway else {}
        with CpuMeter(pids) as meter:
            started = time.perf_counter()
            seconds = await closed_loop(clients, "/v1/chat/completions", bodies, concurrency)
            wall = time.perf_counter() - started
        after = await gateway_timers(clients[0]) if gateway else {}
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    ms = seconds * 1e3
    row = {
        "requests": len(bodies),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "throughput_rps": len(bodies) / wall,
        "cpu_cores": meter.cores,
    }
    if gateway:
        row["gateway_metrics_mean_ms"] = {
            name: 1e3 * (after[name][0] - before[name][0]) / max(after[name][1] - before[name][1], 1) for name in after
        }
    return row


_TIMERS = {  # the gateway's own histograms: (metric, label filter)
    "in_app": ("apportion_request_seconds", 'route="/v1/chat/completions"'),
    "backend": ("apportion_backend_seconds", ""),
    "own": ("apportion_overhead_seconds", ""),
}


async def gateway_timers(client: httpx.AsyncClient) -> dict[str, tuple[float, float]]:
    """(sum, count) of the gateway's timers: time in the app (after HTTP parsing), waiting on the backend as
    its httpx client sees it, and its own time in `Gateway.answer` outside the backend wait."""
    text = (await client.get("/metrics")).text
    found: dict[str, tuple[float, float]] = {}
    for name, (metric, labels) in _TIMERS.items():
        values = []
        for suffix in ("_sum", "_count"):
            pattern = rf"^{metric}{suffix}(?:{{[^}}]*{re.escape(labels)}[^}}]*}})? (\S+)$"
            match = re.search(pattern, text, re.MULTILINE)
            values.append(float(match.group(1)) if match else 0.0)
        found[name] = (values[0], values[1])
    return found


def check_one_round(gateway: str, question: str) -> dict[str, Any]:
    """The comparison is fair only if a query is one backend request of n = 4: check the gateway says so."""
    reply = httpx.post(
        f"{gateway}/v1/chat/completions", content=chat_body("apportion", question, 1), headers=JSON_HEADERS, timeout=30
    )
    reply.raise_for_status()
    decision = reply.json()["apportion"]
    if (decision["rounds"], decision["samples"]) != (1, int(BUDGET)):
        raise RuntimeError(f"the uniform gateway drew {decision['samples']} samples in {decision['rounds']} rounds")
    return {"rounds": decision["rounds"], "samples": decision["samples"], "policy": decision["policy"]}


def latency_part(
    args: argparse.Namespace, work: Path, simulator: str, sim_pid: int, questions: list[Question]
) -> dict[str, Any]:
    """Direct vs through a uniform-k=4 gateway at each concurrency, alternating so drift hits both alike."""
    train(work / "uniform", "uniform", questions)
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    serve = ["serve", "--model", str(work / "uniform"), "--backend", simulator + "/v1", "--port", str(port)]
    rng = random.Random(args.seed)
    levels = []
    proxy_port = free_port()
    proxy = f"http://127.0.0.1:{proxy_port}"
    bare = [sys.executable, str(Path(__file__).with_name("bare_proxy.py"))]
    with (
        server([*serve, "--log-level", "warning"], gateway + "/healthz", work / "gateway-uniform.log") as gw_pid,
        server([simulator + "/v1", str(proxy_port)], proxy + "/healthz", work / "bare-proxy.log", program=bare) as px,
    ):
        checked = check_one_round(gateway, questions[0].question)
        pids = {"gateway": gw_pid, "simulator": sim_pid, "bare_proxy": px}
        for concurrency in args.concurrency:
            count = args.requests_single if concurrency == 1 else args.requests
            picks = [(rng.choice(questions).question, rng.randrange(2**31)) for _ in range(count)]
            warm = [(rng.choice(questions).question, rng.randrange(2**31)) for _ in range(max(50, 2 * concurrency))]
            row: dict[str, Any] = {"concurrency": concurrency}
            for name, base, model, n in (
                ("direct", simulator, "simulated", 4),
                ("bare_proxy", proxy, "simulated", 4),
                ("gateway", gateway, "apportion", None),
            ):
                bodies = [chat_body(model, q, s, n) for q, s in picks]
                warmup = [chat_body(model, q, s, n) for q, s in warm]
                row[name] = asyncio.run(run_level(base, bodies, warmup, concurrency, pids, name == "gateway"))
            row["added_p50_ms"] = row["gateway"]["p50_ms"] - row["direct"]["p50_ms"]
            row["added_p99_ms"] = row["gateway"]["p99_ms"] - row["direct"]["p99_ms"]
            row["bare_proxy_added_p50_ms"] = row["bare_proxy"]["p50_ms"] - row["direct"]["p50_ms"]
            row["bare_proxy_added_p99_ms"] = row["bare_proxy"]["p99_ms"] - row["direct"]["p99_ms"]
            for name in (
                "direct",
                "bare_proxy",
                "gateway",
            ):  # a process at one core flat out sets the pace (each is one thread)
                row[name]["saturated"] = [
                    p for p, cores in row[name]["cpu_cores"].items() if p != "other" and cores >= 0.9
                ]
            row["meets_targets"] = row["added_p50_ms"] <= TARGETS_MS["p50"] and row["added_p99_ms"] <= TARGETS_MS["p99"]
            levels.append(row)
            print(f"  concurrency {concurrency}: added {row['added_p50_ms']:.2f} / {row['added_p99_ms']:.2f} ms")
    return {"backend_latency_ms": args.latency_ms, "one_round_check": checked, "levels": levels}


# --- part 2: budget adherence ----------------------------------------------------------------------------


async def shifted_run(
    gateway: str, stream: list[Question], seeds: list[int], concurrency: int, every: int
) -> dict[str, Any]:
    """The stream through the gateway; each query's samples from its reply, the ledger every `every` queries."""
    samples = np.zeros(len(stream), dtype=np.int64)
    trajectory: list[dict[str, Any]] = []
    queue = iter(range(len(stream)))
    done = 0
    clients = clients_for(gateway, concurrency)
    try:

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal done
            for i in queue:
                body = chat_body("apportion", stream[i].question, seeds[i])
                reply = await client.post("/v1/chat/completions", content=body, headers=JSON_HEADERS)
                if reply.status_code != 200:
                    raise RuntimeError(f"query {i} failed with {reply.status_code}: {reply.text[:200]}")
                samples[i] = reply.json()["apportion"]["samples"]
                done += 1
                if done % every == 0:
                    trajectory.append({"answered": done, **await budget_view(client)})

        started = time.perf_counter()
        await asyncio.gather(*(worker(clients[w // SHARD]) for w in range(concurrency)))
        wall = time.perf_counter() - started
        final = await budget_view(clients[0])
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    half = len(stream) // 2
    return {
        **final,
        "relative_error": final["realized"] / final["target"] - 1,
        "realized_easy_half": float(samples[:half].mean()),
        "realized_hard_half": float(samples[half:].mean()),
        "replies_mean_samples": float(samples.mean()),
        "throughput_qps": len(stream) / wall,
        "trajectory": trajectory,
    }


async def budget_view(client: httpx.AsyncClient) -> dict[str, Any]:
    view = (await client.get("/v1/budget")).json()
    keys = ("target", "realized", "queries", "samples", "lambda", "operating_budget")
    return {key: view[key] for key in keys}


def budget_part(
    args: argparse.Namespace, work: Path, simulator: str, training: list[Question], serving: list[Question]
) -> dict[str, Any]:
    """The default policy on a shifting stream, with the controller (closed loop) and without it (open loop)."""
    seconds = train(work / "adaptive", DEFAULT_POLICY, training)
    print(f"  trained {DEFAULT_POLICY} on {len(training)} questions in {seconds:.0f} s")
    stream, seeds = shifted_stream(serving, args.queries, args.seed)
    runs: dict[str, Any] = {}
    for name, env in (("closed_loop", {}), ("open_loop", {"APPORTION_HORIZON": "1e12"})):
        port = free_port()
        command = ["serve", "--model", str(work / "adaptive"), "--backend", simulator + "/v1", "--port", str(port)]
        url = f"http://127.0.0.1:{port}"
        with server([*command, "--log-level", "warning"], url + "/healthz", work / f"gateway-{name}.log", env):
            runs[name] = asyncio.run(shifted_run(url, stream, seeds, args.budget_concurrency, args.every))
        print(f"  {name}: realized {runs[name]['realized']:.3f} samples per query")
    return {
        "policy": DEFAULT_POLICY,
        "training_questions": len(training),
        "training_seconds": seconds,
        "serving_questions": len(serving),
        "queries": args.queries,
        "concurrency": args.budget_concurrency,
        "shift": "first half levels 1-3, second half levels 4-6",
        "open_loop_setting": "APPORTION_HORIZON=1e12",
        "target_relative_error": 0.01,
        "meets_target": abs(runs["closed_loop"]["relative_error"]) <= 0.01,
        **runs,
    }


# --- report ----------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "httpx": httpx.__version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_at_start": os.getloadavg(),
    }


def print_report(report: dict[str, Any]) -> None:
    latency = report["latency"]
    print(f"\nadded latency: simulated backend {latency['backend_latency_ms']:g} ms, n=4 direct vs uniform k=4 gateway")
    print(
        "  conc │ direct p50/p99 ms │ gateway p50/p99 ms │ added p50/p99 ms │ req/s direct/gw │ cores cl/gw/sim/other"
        " (via gateway)"
    )
    for row in latency["levels"]:
        d, g, cores = row["direct"], row["gateway"], row["gateway"]["cpu_cores"]
        bound = [
            f"{name[0]}:{'+'.join(row[name]['saturated'])}" for name in ("direct", "gateway") if row[name]["saturated"]
        ]
        flags = (" ok" if row["meets_targets"] else " MISS") + (f" saturated {' '.join(bound)}" if bound else "")
        print(
            f"  {row['concurrency']:>4} │ {d['p50_ms']:7.1f} {d['p99_ms']:8.1f} │ "
            f"{g['p50_ms']:8.1f} {g['p99_ms']:8.1f} │"
            f" {row['added_p50_ms']:7.2f} {row['added_p99_ms']:7.2f}  │ {d['throughput_rps']:6.0f} "
            f"{g['throughput_rps']:6.0f}   │ {cores['client']:.2f} {cores['gateway']:.2f} {cores['simulator']:.2f}"
            f" {cores['other']:.2f}{flags}"
        )
    print(f"  targets: added ≤ {TARGETS_MS['p50']:g} ms p50, ≤ {TARGETS_MS['p99']:g} ms p99")
    print("  a bare forwarding proxy (bench/bare_proxy.py) in the same place adds, p50/p99 ms, and serves req/s:")
    for row in latency["levels"]:
        print(
            f"  {row['concurrency']:>4} │ {row['bare_proxy_added_p50_ms']:7.2f} {row['bare_proxy_added_p99_ms']:7.2f}"
            f"  │ {row['bare_proxy']['throughput_rps']:6.0f}"
        )
    print("  gateway's own timers, mean ms: client-seen │ in app │ backend wait │ own (answer minus backend)")
    for row in latency["levels"]:
        timers = row["gateway"]["gateway_metrics_mean_ms"]
        print(
            f"  {row['concurrency']:>4} │ {row['gateway']['mean_ms']:8.2f} │ {timers['in_app']:8.2f} │"
            f" {timers['backend']:8.2f} (direct {row['direct']['mean_ms']:.2f}) │ {timers['own']:6.2f}"
        )
    b = report["budget"]
    print(f"\nbudget adherence: {b['policy']}, {b['queries']} queries ({b['shift']}), concurrency {b['concurrency']}")
    for name in ("closed_loop", "open_loop"):
        r = b[name]
        print(
            f"  {name:<11} target {r['target']:.3f}  realized {r['realized']:.4f} ({r['relative_error']:+.2%})"
            f"  easy half {r['realized_easy_half']:.3f}  hard half {r['realized_hard_half']:.3f}"
            f"  {r['throughput_qps']:.0f} q/s"
        )
    print(f"  closed loop within ±1%: {'yes' if b['meets_target'] else 'NO'}")
    print("  answered │ operating budget   λ      realized")
    for point in b["closed_loop"]["trajectory"]:
        lam = "-" if point["lambda"] is None else f"{point['lambda']:.4f}"
        print(f"  {point['answered']:>8} │ {point['operating_budget']:8.3f}  {lam:>8}  {point['realized']:8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="simulated backend delay per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per way, concurrency > 1")
    parser.add_argument("--requests-single", type=int, default=300, help="measured requests per way, concurrency 1")
    parser.add_argument("--queries", type=int, default=10_000, help="queries in the budget run")
    parser.add_argument("--budget-concurrency", type=int, default=32)
    parser.add_argument("--every", type=int, default=500, help="queries between ledger snapshots")
    parser.add_argument("--train-questions", type=int, default=1000, help="adaptive fit: ~25 s per 1000 here")
    parser.add_argument("--serve-questions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gateway.json")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.requests_single, args.queries = 400, 60, 2000
        args.train_questions, args.serve_questions, args.every = 300, 1000, 250
    started = time.perf_counter()
    report: dict[str, Any] = {"machine": machine(), "command": " ".join(sys.argv)}
    with tempfile.TemporaryDirectory(prefix="apportion-bench-gateway-") as scratch:
        work = Path(scratch)
        training = write_outcomes(work / "train.jsonl", args.train_questions, args.seed + 1)
        serving = write_outcomes(work / "serve.jsonl", args.serve_questions, args.seed + 2)
        port = free_port()
        simulator = f"http://127.0.0.1:{port}"
        simulate = ["simulate", "--outcomes", str(work / "serve.jsonl"), "--port", str(port)]
        with server([*simulate, "--latency-ms", str(args.latency_ms)], simulator + "/health", work / "sim.log") as pid:
            print("part 1: added latency and throughput")
            report["latency"] = latency_part(args, work, simulator, pid, serving)
            print("part 2: budget adherence under an easy→hard shift")
            report["budget"] = budget_part(args, work, simulator, training, serving)
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    report["elapsed_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"\n{report['elapsed_s']:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
