"""Hostile tenants and ugly faults at full length, against `apportion serve` processes on loopback:

1. Poison: requests the engines fail on (every time, on every backend) every 5 s for 60 s, beside two innocent
   tenants: their success rate, and whether any breaker opened.
2. Redis killed (SIGKILL) and restarted mid-run, three times, 2,000 requests at 32 in flight each, with Redis
   syncing its append-only file every second (its default, which loses up to a second on a crash): 5xx
   replies, and the ledger against the samples the clients were told they got.
3. Slow clients: 200 sockets that connect and send nothing, or trickle their headers, for 30 s: how many the
   gateway closed and when, and a normal client's latency meanwhile.
4. A flooding tenant with 128 requests in flight (wrk, its own process): another tenant's p50 beside it,
   against its p50 alone, with a per-tenant limit of 64 requests in flight (the default) and of 16.

    python bench/hostile.py [--quick] [--out bench/results/hostile.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.processes import RedisServer, machine, server
from bench.processes import simulator as simulate
from bench.workload import train, write_outcomes
from bench.wrk import run_wrk
from service.server_thread import ServerThread, free_port
from service.tenants import key_hash
from tests.fake_backends import fake_backend

TENANTS = ("alpha", "beta", "flood")


def tenants_file(path: Path) -> Path:
    path.write_text(json.dumps([{"tenant": t, "key_sha256": key_hash(f"key-{t}")} for t in TENANTS]))
    return path


def auth(tenant: str) -> dict[str, str]:
    return {"authorization": f"Bearer key-{tenant}"}


def body(question: str, seed: int) -> dict[str, Any]:
    return {"model": "apportion", "messages": [{"role": "user", "content": question}], "seed": seed}


def gateway(work: Path, name: str, backends: list[str], *extra: str) -> tuple[ExitStack, str]:
    stack = ExitStack()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = ["serve", "--model", str(work / "model"), "--port", str(port), "--log-level", "warning"]
    command += [arg for backend in backends for arg in ("--backend", backend)]
    command += ["--tenants", str(work / "tenants.json"), *extra]
    stack.enter_context(server(command, url + "/healthz", work / f"{name}.log"))
    return stack, url


# --- 1. poison ---------------------------------------------------------------------------------------------


async def poison_run(url: str, seconds: float, every: float) -> dict[str, Any]:
    innocent: list[int] = []
    poison: list[tuple[int, str]] = []
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def tenant(name: str, worker: int) -> None:
            seed = worker * 10**6
            while time.monotonic() < stop:
                seed += 1
                reply = await client.post("/v1/chat/completions", json=body("What is 6 x 7?", seed), headers=auth(name))
                innocent.append(reply.status_code)

        async def poisoner() -> None:
            while time.monotonic() < stop:
                reply = await client.post("/v1/chat/completions", json=body("POISON", 0), headers=auth("flood"))
                poison.append((reply.status_code, reply.json()["error"]["code"] if reply.status_code != 200 else ""))
                await asyncio.sleep(every)

        await asyncio.gather(*(tenant(name, w) for name in ("alpha", "beta") for w in range(4)), poisoner())
    return {
        "seconds": seconds,
        "poison_every_s": every,
        "innocent_requests": len(innocent),
        "innocent_success": innocent.count(200) / max(len(innocent), 1),
        "innocent_503": innocent.count(503),
        "poison_requests": len(poison),
        "poison_replies": sorted({f"{status} {code}" for status, code in poison}),
    }


def poison_part(work: Path, seconds: float) -> dict[str, Any]:
    apps = [fake_backend("poison", delay=0.02), fake_backend("poison", delay=0.02)]
    with ServerThread(apps[0]) as one, ServerThread(apps[1]) as two:
        stack, url = gateway(work, "poison", [one + "/v1", two + "/v1"])
        with stack:
            runs = {f"every {every:g} s": asyncio.run(poison_run(url, seconds, every)) for every in (5.0, 0.5)}
            health = httpx.get(url + "/readyz").json()["backends"]
    return {"runs": runs, "breakers_at_end": health}


# --- 2. Redis killed mid-run -------------------------------------------------------------------------------


async def chaos_run(url: str, redis_server: RedisServer, questions: list[str], requests: int) -> dict[str, Any]:
    statuses: list[int] = []
    served = 0
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
        gate = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            nonlocal served
            async with gate:
                reply = await client.post(
                    "/v1/chat/completions", json=body(questions[i % len(questions)], i), headers=auth(TENANTS[i % 2])
                )
                statuses.append(reply.status_code)
                if reply.status_code == 200:
                    served += reply.json()["apportion"]["samples"]

        async def chaos() -> None:
            while len(statuses) < requests // 3:
                await asyncio.sleep(0.01)
            redis_server.kill()
            await asyncio.sleep(1.0)
            redis_server.start()

        await asyncio.gather(asyncio.gather(*(one(i) for i in range(requests))), chaos())
    await asyncio.sleep(3.0)  # the gateway's upkeep reconnects and replays within a second or two
    client = redis.Redis.from_url(redis_server.url)
    ledger = client.hgetall("apportion:ledger")
    drawn = sum(int(v) for v in client.hgetall("apportion:model_samples").values())
    return {
        "requests": requests,
        "5xx": sum(1 for status in statuses if status >= 500),
        "errors": sorted({s for s in statuses if s != 200}),
        "samples_served": served,
        "ledger_samples": drawn,
        "ledger_queries": int(ledger[b"queries"]),
        "exact": served == drawn and int(ledger[b"queries"]) == requests,
    }


def redis_part(work: Path, simulator: str, questions: list[str], runs: int, requests: int) -> dict[str, Any]:
    results = []
    for run in range(runs):
        directory = work / f"redis-{run}"
        directory.mkdir()
        redis_server = RedisServer(directory, fsync="everysec")
        try:
            stack, url = gateway(work, f"chaos-{run}", [simulator], "--redis", redis_server.url)
            with stack:
                results.append(asyncio.run(chaos_run(url, redis_server, questions, requests)))
        finally:
            redis_server.stop()
        print(f"  run {run + 1}: {results[-1]}")
    return {"appendfsync": "everysec", "runs": results}


# --- 3. slow clients ---------------------------------------------------------------------------------------


def slow_part(url: str, question: str, seconds: float) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1])
    alone, failures = latencies(url, question, 40)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    trickling = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    opened = time.monotonic()
    closed_at: dict[int, float] = {}
    during: list[float] = []
    for sock in idle + trickling:
        sock.setblocking(False)
    while time.monotonic() - opened < seconds:
        for index, sock in enumerate(idle + trickling):
            if index in closed_at:
                continue
            try:
                if index >= len(idle):
                    sock.send(b"X")  # a byte of a header now and then, never a whole request
                if sock.recv(1) == b"":
                    closed_at[index] = time.monotonic() - opened
            except BlockingIOError:
                pass
            except OSError:
                closed_at[index] = time.monotonic() - opened
        took, failed = latencies(url, question, 5)
        during += took
        failures += failed
        time.sleep(0.2)
    for sock in idle + trickling:
        sock.close()
    return {
        "sockets": len(idle) + len(trickling),
        "closed": len(closed_at),
        "closed_by_s": round(max(closed_at.values()), 1) if closed_at else None,
        "normal_p50_ms_alone": float(np.percentile(alone, 50)),
        "normal_p50_ms_during": float(np.percentile(during, 50)),
        "normal_failures": failures,
    }


def latencies(url: str, question: str, count: int) -> tuple[list[float], int]:
    """Milliseconds of each of `count` requests one after another, and how many failed."""
    took, failed = [], 0
    for i in range(count):
        started = time.perf_counter()
        reply = httpx.post(url + "/v1/chat/completions", json=body(question, i), headers=auth("alpha"), timeout=30)
        took.append(1e3 * (time.perf_counter() - started))
        failed += reply.status_code != 200
    return took, failed


# --- 4. a flooding tenant ----------------------------------------------------------------------------------


def calm_latencies(url: str, question: str, seconds: float) -> dict[str, Any]:
    """One request after another from a tenant that behaves, for `seconds`: its latency percentiles."""
    took, failed = [], 0
    stop = time.monotonic() + seconds
    seed = 0
    with httpx.Client(base_url=url, timeout=60) as client:
        while time.monotonic() < stop:
            seed += 1
            started = time.perf_counter()
            reply = client.post("/v1/chat/completions", json=body(question, seed), headers=auth("alpha"))
            took.append(1e3 * (time.perf_counter() - started))
            failed += reply.status_code != 200
    return {
        "requests": len(took),
        "failed": failed,
        "p50_ms": float(np.percentile(took, 50)),
        "p99_ms": float(np.percentile(took, 99)),
    }


def flood_part(work: Path, simulator: str, question: str, seconds: float) -> dict[str, Any]:
    """The flood comes from wrk (C, its own process), so that the calm tenant's latency is the gateway's and not
    a shared Python client's."""
    results: dict[str, Any] = {}
    flood_bodies = [json.dumps(body(question, seed)).encode() for seed in range(1000)]
    for limit in (64, 16):
        stack, url = gateway(work, f"flood-{limit}", [simulator], "--max-in-flight-per-tenant", str(limit))
        with stack:
            alone = calm_latencies(url, question, seconds / 2)
            with ThreadPoolExecutor(1) as pool:
                flood = pool.submit(run_wrk, url, flood_bodies, 128, seconds, work, "key-flood")
                time.sleep(1.0)  # the flood is on before the calm tenant measures
                beside = calm_latencies(url, question, seconds - 2)
                flooded = flood.result()
            results[f"limit {limit}"] = {
                "calm_alone": alone,
                "calm_beside_a_tenant_with_128_in_flight": beside,
                "flood": {
                    "requests": flooded.requests,
                    "refused_429_or_other": flooded.failed,
                    "rps": flooded.throughput_rps,
                },
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 2 minutes)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hostile.json")
    args = parser.parse_args()
    poison_s, slow_s, flood_s, requests = (12.0, 12.0, 6.0, 600) if args.quick else (60.0, 30.0, 20.0, 2000)
    started = time.perf_counter()
    report: dict[str, Any] = {"machine": machine(), "command": " ".join(sys.argv)}
    with tempfile.TemporaryDirectory(prefix="apportion-hostile-") as scratch:
        work = Path(scratch)
        questions = write_outcomes(work / "outcomes.jsonl", 400, 5)
        train(work / "model", "adaptive", questions[:300])
        tenants_file(work / "tenants.json")
        texts = [q.question for q in questions[300:]]
        with simulate(work / "outcomes.jsonl", work, 20) as (simulator, _):
            print("1. poison requests")
            report["poison"] = poison_part(work, poison_s)
            print("2. Redis killed and restarted mid-run")
            report["redis_restart"] = redis_part(work, simulator + "/v1", texts, 3, requests)
            print("3. slow clients")
            stack, url = gateway(work, "slow", [simulator + "/v1"])
            with stack:
                report["slow_clients"] = slow_part(url, texts[0], slow_s)
            print("4. a flooding tenant")
            report["flooding_tenant"] = flood_part(work, simulator + "/v1", texts[1], flood_s)
    report["elapsed_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine",)}, indent=2))
    print(f"{report['elapsed_s']:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
