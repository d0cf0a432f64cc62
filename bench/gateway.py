"""Benchmark the gateway as deployed: its CPU per request and added latency, and how well it keeps the budget.

1. CPU and added latency. The same simulated backend (a fixed delay per request) is asked directly with
   n = 4, through a bare pass-through proxy (`bench/bare_proxy.py`: the floor of any Python HTTP hop), and
   through the gateway serving a uniform k = 4 model, which makes exactly one backend request with n = 4 per
   query. wrk drives each in turn at several concurrencies; each process's CPU is read from /proc, so the
   gateway's CPU milliseconds per request stand beside the bare proxy's, measured in the same run.
2. Budget adherence. The default (adaptive) policy, trained on one synthetic file, serves questions from
   another, easy ones (levels 1-3) first and hard ones (4-6) after: the controller must still hold the mean
   samples per query on target. The same stream through a gateway whose horizon is huge (no correction)
   shows what the policy spends open loop.

    python bench/gateway.py [--quick] [--only latency|budget] [--concurrency 1 32 256] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from allocator.registry import DEFAULT_POLICY
from bench.processes import CpuMeter, machine, server
from bench.processes import simulator as simulate
from bench.workload import BUDGET, chat_body, clients_for, train, write_outcomes
from bench.wrk import run_wrk, wrk_binary
from oracle.outcomes import Question
from service.server_thread import free_port

TARGETS_MS = {"p50": 2.0, "p99": 10.0}
CPU_RATIO_TARGET = 2.0  # the gateway's CPU per request over the bare proxy's, at 32 in flight
WAYS = (("direct", "simulator"), ("bare_proxy", "bare_proxy"), ("gateway", "gateway"))


# --- part 1: CPU per request and added latency ------------------------------------------------------------


def run_level(
    base: str, bodies: list[bytes], concurrency: int, seconds: float, pids: dict[str, int], work: Path, own: str
) -> dict[str, Any]:
    """A short warm-up, then `seconds` of wrk at `concurrency`; latency, throughput, each process's CPU, and
    the CPU per request of the process that served (`own`)."""
    run_wrk(base, bodies, concurrency, min(2.0, seconds), work)
    with CpuMeter(pids) as meter:
        result = run_wrk(base, bodies, concurrency, seconds, work)
    if result.failed:
        raise RuntimeError(f"{result.failed} of {result.requests} requests to {base} failed")
    return {
        **result.row(),
        "cpu_cores": meter.cores,
        "cpu_ms_per_request": 1e3 * meter.seconds[own] / result.requests,
        "saturated": [p for p, cores in meter.cores.items() if p != "other" and cores >= 0.9],
    }


_TIMERS = {  # the gateway's own histograms: (metric, label filter)
    "in_app": ("apportion_request_seconds", 'route="/v1/chat/completions"'),
    "backend": ("apportion_backend_seconds", ""),
    "own": ("apportion_overhead_seconds", ""),
}


def gateway_timers(base: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of the gateway's timers: time in the app (after HTTP parsing), waiting on the backend, and
    its own time in `Gateway.answer` outside the backend wait."""
    text = httpx.get(f"{base}/metrics").text
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
    headers = {"content-type": "application/json"}
    reply = httpx.post(
        f"{gateway}/v1/chat/completions", content=chat_body("apportion", question, 1), headers=headers, timeout=30
    )
    reply.raise_for_status()
    decision = reply.json()["apportion"]
    if (decision["rounds"], decision["samples"]) != (1, int(BUDGET)):
        raise RuntimeError(f"the uniform gateway drew {decision['samples']} samples in {decision['rounds']} rounds")
    return {"rounds": decision["rounds"], "samples": decision["samples"], "policy": decision["policy"]}


def latency_part(
    args: argparse.Namespace, work: Path, simulator: str, sim_pid: int, questions: list[Question]
) -> dict[str, Any]:
    """Direct, bare proxy and gateway at each concurrency, in turn, on the same request stream."""
    train(work / "uniform", "uniform", questions)
    port, proxy_port = free_port(), free_port()
    gateway, proxy = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{proxy_port}"
    serve = ["serve", "--model", str(work / "uniform"), "--backend", simulator + "/v1", "--port", str(port)]
    bare = [sys.executable, str(Path(__file__).with_name("bare_proxy.py"))]
    rng = random.Random(args.seed)
    picks = [(rng.choice(questions).question, rng.randrange(2**31)) for _ in range(2000)]
    streams = {
        "direct": (simulator, [chat_body("simulated", q, s, 4) for q, s in picks]),
        "bare_proxy": (proxy, [chat_body("simulated", q, s, 4) for q, s in picks]),
        "gateway": (gateway, [chat_body("apportion", q, s) for q, s in picks]),
    }
    levels = []
    with (
        server([*serve, "--log-level", "warning"], gateway + "/healthz", work / "gateway-uniform.log") as gw_pid,
        server([simulator + "/v1", str(proxy_port)], proxy + "/healthz", work / "bare-proxy.log", program=bare) as px,
    ):
        checked = check_one_round(gateway, questions[0].question)
        pids = {"gateway": gw_pid, "simulator": sim_pid, "bare_proxy": px}
        for concurrency in args.concurrency:
            row: dict[str, Any] = {"concurrency": concurrency}
            for name, process in WAYS:
                base, bodies = streams[name]
                before = gateway_timers(gateway) if name == "gateway" else {}
                row[name] = run_level(base, bodies, concurrency, args.seconds, pids, work, process)
                if name == "gateway":
                    after = gateway_timers(gateway)
                    row[name]["gateway_metrics_mean_ms"] = {
                        key: 1e3 * (after[key][0] - before[key][0]) / max(after[key][1] - before[key][1], 1)
                        for key in after
                    }
            _compare(row)
            levels.append(row)
            print(
                f"  concurrency {concurrency}: CPU per request {row['gateway']['cpu_ms_per_request']:.3f} ms, bare "
                f"proxy {row['bare_proxy']['cpu_ms_per_request']:.3f} ms ({row['gateway_vs_bare_proxy_cpu']:.2f}×); "
                f"added p50 {row['added_p50_ms']:.2f} ms"
            )
    return {
        "backend_latency_ms": args.latency_ms,
        "seconds_per_way": args.seconds,
        "one_round_check": checked,
        "load_generator": "wrk",
        "levels": levels,
    }


def _compare(row: dict[str, Any]) -> None:
    row["gateway_vs_bare_proxy_cpu"] = row["gateway"]["cpu_ms_per_request"] / row["bare_proxy"]["cpu_ms_per_request"]
    for name in ("gateway", "bare_proxy"):
        prefix = "" if name == "gateway" else "bare_proxy_"
        row[f"{prefix}added_p50_ms"] = row[name]["p50_ms"] - row["direct"]["p50_ms"]
        row[f"{prefix}added_p99_ms"] = row[name]["p99_ms"] - row["direct"]["p99_ms"]
    row["meets_latency_targets"] = row["added_p50_ms"] <= TARGETS_MS["p50"] and row["added_p99_ms"] <= TARGETS_MS["p99"]


# --- part 2: budget adherence ----------------------------------------------------------------------------


def steps(question: Question) -> int:
    """The synthetic difficulty: "Level {steps}", more steps are harder."""
    return int(str(question.level).split()[-1])


def shifted_stream(questions: list[Question], n: int, seed: int) -> tuple[list[Question], list[int]]:
    """`n` queries: the first half drawn from levels 1-3, the second from levels 4-6; a random seed each."""
    rng = random.Random(seed)
    easy = [q for q in questions if steps(q) <= 3]
    hard = [q for q in questions if steps(q) >= 4]
    half = n // 2
    stream = [rng.choice(easy) for _ in range(half)] + [rng.choice(hard) for _ in range(n - half)]
    return stream, [rng.randrange(2**31) for _ in stream]


async def shifted_run(
    gateway: str, stream: list[Question], seeds: list[int], concurrency: int, every: int
) -> dict[str, Any]:
    """The stream through the gateway; each query's samples from its reply, the ledger every `every` queries."""
    samples = np.zeros(len(stream), dtype=np.int64)
    trajectory: list[dict[str, Any]] = []
    queue = iter(range(len(stream)))
    done = 0
    clients = clients_for(gateway, concurrency)
    headers = {"content-type": "application/json"}
    try:

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal done
            for i in queue:
                body = chat_body("apportion", stream[i].question, seeds[i])
                reply = await client.post("/v1/chat/completions", content=body, headers=headers)
                if reply.status_code != 200:
                    raise RuntimeError(f"query {i} failed with {reply.status_code}: {reply.text[:200]}")
                samples[i] = reply.json()["apportion"]["samples"]
                done += 1
                if done % every == 0:
                    trajectory.append({"answered": done, **await budget_view(client)})

        started = time.perf_counter()
        await asyncio.gather(*(worker(clients[w % len(clients)]) for w in range(concurrency)))
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
    keys = ("target", "realized", "queries", "cost", "lambda", "operating_budget")
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
        # judged at the precision printed (0.01%), so that "+1.00%" is never reported as a miss of ±1%
        "meets_target": round(abs(runs["closed_loop"]["relative_error"]) * 100, 2) <= 1.0,
        **runs,
    }


# --- report ----------------------------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    if "latency" in report:
        print_latency(report["latency"])
    if "budget" in report:
        print_budget(report["budget"])


def print_latency(latency: dict[str, Any]) -> None:
    print(f"\nsimulated backend {latency['backend_latency_ms']:g} ms; n=4 direct, bare proxy, uniform k=4 gateway; wrk")
    print("  CPU per request, ms (the serving process's CPU over the requests it served)")
    print("  conc │ direct (simulator) │ bare proxy │ gateway │ gateway / bare proxy")
    for row in latency["levels"]:
        ratio = row["gateway_vs_bare_proxy_cpu"]
        verdict = "" if row["concurrency"] != 32 else (" ok" if ratio <= CPU_RATIO_TARGET else " MISS")
        print(
            f"  {row['concurrency']:>4} │ {row['direct']['cpu_ms_per_request']:18.3f} │"
            f" {row['bare_proxy']['cpu_ms_per_request']:10.3f} │ {row['gateway']['cpu_ms_per_request']:7.3f} │"
            f" {ratio:.2f}×{verdict}"
        )
    print(f"  target at 32 in flight: gateway ≤ {CPU_RATIO_TARGET:g}× the bare proxy")
    print("  conc │ p50/p99 ms: direct │ bare proxy │ gateway │ added by gateway │ req/s direct/bare/gw │ saturated")
    for row in latency["levels"]:
        d, b, g = row["direct"], row["bare_proxy"], row["gateway"]
        busy = sorted({p for name, _ in WAYS for p in row[name]["saturated"]})
        print(
            f"  {row['concurrency']:>4} │ {d['p50_ms']:6.1f} {d['p99_ms']:6.1f} │"
            f" {b['p50_ms']:6.1f} {b['p99_ms']:6.1f} │ {g['p50_ms']:6.1f} {g['p99_ms']:6.1f} │"
            f" {row['added_p50_ms']:6.2f} {row['added_p99_ms']:7.2f} │"
            f" {d['throughput_rps']:5.0f} {b['throughput_rps']:5.0f} {g['throughput_rps']:5.0f} │"
            f" {' '.join(busy) or '-'}"
        )
    print(f"  added latency targets: ≤ {TARGETS_MS['p50']:g} ms p50, ≤ {TARGETS_MS['p99']:g} ms p99")
    print("  gateway's own timers, mean ms: client-seen │ in app │ backend wait │ own (answer minus backend)")
    for row in latency["levels"]:
        timers = row["gateway"]["gateway_metrics_mean_ms"]
        print(
            f"  {row['concurrency']:>4} │ {row['gateway']['mean_ms']:8.2f} │ {timers['in_app']:8.2f} │"
            f" {timers['backend']:8.2f} (direct {row['direct']['mean_ms']:.2f}) │ {timers['own']:6.2f}"
        )


def print_budget(b: dict[str, Any]) -> None:
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
    parser.add_argument("--only", choices=("latency", "budget"), help="run one part (both by default)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="simulated backend delay per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per way and concurrency")
    parser.add_argument("--queries", type=int, default=10_000, help="queries in the budget run")
    parser.add_argument("--budget-concurrency", type=int, default=32)
    parser.add_argument("--every", type=int, default=500, help="queries between ledger snapshots")
    parser.add_argument("--train-questions", type=int, default=1000, help="adaptive fit: ~25 s per 1000 here")
    parser.add_argument("--serve-questions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gateway.json")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.queries = 5.0, 2000
        args.train_questions, args.serve_questions, args.every = 300, 1000, 250
    if args.only != "budget":
        wrk_binary()  # before anything starts: say at once that it is missing
    started = time.perf_counter()
    report: dict[str, Any] = {"machine": machine(), "command": " ".join(sys.argv)}
    with tempfile.TemporaryDirectory(prefix="apportion-bench-gateway-") as scratch:
        work = Path(scratch)
        training = write_outcomes(work / "train.jsonl", args.train_questions, args.seed + 1)
        serving = write_outcomes(work / "serve.jsonl", args.serve_questions, args.seed + 2)
        with simulate(work / "serve.jsonl", work, args.latency_ms) as (simulator, pid):
            if args.only in (None, "latency"):
                print("part 1: CPU per request, added latency and throughput")
                report["latency"] = latency_part(args, work, simulator, pid, serving)
            if args.only in (None, "budget"):
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
