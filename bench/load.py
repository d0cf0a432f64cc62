"""Load: many requests through two gateway processes that share one Redis, to the simulated backend.

Checks what operators need to trust the accounting: no errors, resident memory flat from warm-up to the
end, and the shared ledger's totals exactly equal to the samples the clients were told they got, overall
and per tenant. A second pass replays every request id: the ledger must not move (charges are idempotent).

    python bench/load.py [--requests 10000] [--concurrency 256] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.processes import RedisServer, machine, rss_mb, server, simulator
from bench.workload import SHARD, clients_for, train, write_outcomes
from service.server_thread import free_port
from service.tenants import key_hash

TENANTS = ("search", "tutor")


async def send_all(gateways: list[str], bodies: list[tuple[int, bytes]], concurrency: int) -> list[tuple[int, int]]:
    """Each body to alternate gateways, `concurrency` in flight; (status, samples) per request."""
    per_gateway = max(concurrency // len(gateways), 1)
    clients = [client for url in gateways for client in clients_for(url, per_gateway)]
    results: list[tuple[int, int]] = [(0, 0)] * len(bodies)
    queue = iter(range(len(bodies)))

    async def worker(client: httpx.AsyncClient) -> None:
        for i in queue:
            tenant, body = bodies[i]
            headers = {"content-type": "application/json", "authorization": f"Bearer key-{TENANTS[tenant]}"}
            try:
                reply = await client.post("/v1/chat/completions", content=body, headers=headers)
                samples = reply.json()["apportion"]["samples"] if reply.status_code == 200 else 0
                results[i] = (reply.status_code, samples)
            except httpx.HTTPError as exc:
                results[i] = (-1, 0)
                print(f"request {i}: {type(exc).__name__}", file=sys.stderr)

    workers = [worker(clients[w % len(clients)]) for w in range(concurrency)]
    try:
        await asyncio.gather(*workers)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    return results


def ledger(url: str) -> dict[str, Any]:
    r = redis.Redis.from_url(url, decode_responses=True)
    fields = r.hgetall("apportion:ledger")
    return {  # samples as whole numbers: each model's (one model here, at price 1: its cost)
        "queries": int(fields["queries"]),
        "samples": sum(int(v) for v in r.hgetall("apportion:model_samples").values()),
        "tenant_samples": {k: int(v) for k, v in r.hgetall("apportion:tenant_samples").items()},
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    questions = write_outcomes(work / "outcomes.jsonl", 400, 3)
    train(work / "model", "adaptive", questions[:300])
    (work / "tenants.json").write_text(
        json.dumps([{"tenant": t, "key_sha256": key_hash(f"key-{t}"), "budget": None} for t in TENANTS])
    )
    redis_server = RedisServer(work)
    redis_url = redis_server.url
    rng = random.Random(0)
    serving = questions[300:]

    def bodies(n: int, prefix: str) -> list[tuple[int, bytes]]:
        made = []
        for i in range(n):
            q = rng.choice(serving)
            body = {
                "model": "apportion",
                "seed": rng.randrange(2**31),
                "request_id": f"{prefix}-{i}",
                "messages": [{"role": "user", "content": q.question}],
            }
            made.append((i % len(TENANTS), json.dumps(body).encode()))
        return made

    try:
        ports = [free_port(), free_port()]
        serve = [
            "serve",
            "--model",
            str(work / "model"),
            "--redis",
            redis_url,
            "--tenants",
            str(work / "tenants.json"),
            "--max-in-flight-per-tenant",
            str(args.concurrency),  # a load test, not a fairness one: no tenant is held back here
            "--log-level",
            "warning",
        ]
        with (
            simulator(work / "outcomes.jsonl", work, args.latency_ms) as (backend, _),
            server(
                [*serve, "--backend", backend + "/v1", "--port", str(ports[0])],
                f"http://127.0.0.1:{ports[0]}/healthz",
                work / "g0.log",
            ) as g0,
            server(
                [*serve, "--backend", backend + "/v1", "--port", str(ports[1])],
                f"http://127.0.0.1:{ports[1]}/healthz",
                work / "g1.log",
            ) as g1,
        ):
            gateways = [f"http://127.0.0.1:{port}" for port in ports]
            warm = asyncio.run(send_all(gateways, bodies(400, "warm"), 32))
            rss_start = [rss_mb(g0), rss_mb(g1)]
            before = ledger(redis_url)
            main = bodies(args.requests, "load")
            started = time.perf_counter()
            results = asyncio.run(send_all(gateways, main, args.concurrency))
            wall = time.perf_counter() - started
            rss_end = [rss_mb(g0), rss_mb(g1)]
            after = ledger(redis_url)
            replay = asyncio.run(send_all(gateways, main, args.concurrency))
            after_replay = ledger(redis_url)
            views = [
                httpx.get(url + "/v1/budget", headers={"authorization": "Bearer key-search"}).json() for url in gateways
            ]
    finally:
        redis_server.stop()
    statuses = [status for status, _ in results]
    served = sum(samples for _, samples in results)
    per_tenant = {t: sum(results[i][1] for i in range(len(main)) if main[i][0] == k) for k, t in enumerate(TENANTS)}
    ledger_tenants = {t: after["tenant_samples"].get(t, 0) - before["tenant_samples"].get(t, 0) for t in TENANTS}
    return {
        "machine": machine(),
        "command": " ".join(["bench/load.py", *sys.argv[1:]]),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "gateways": 2,
        "errors": {str(s): statuses.count(s) for s in set(statuses) if s != 200},
        "throughput_rps": args.requests / wall,
        "rss_mb": {"start": rss_start, "end": rss_end},
        "samples_served": served,
        "ledger_samples": after["samples"] - before["samples"],
        "ledger_queries": after["queries"] - before["queries"],
        "per_tenant_served": per_tenant,
        "per_tenant_ledger": ledger_tenants,
        "exact": served == after["samples"] - before["samples"] and per_tenant == ledger_tenants,
        "replay": {
            "errors": sum(1 for s, _ in replay if s != 200),
            "ledger_moved_by": after_replay["samples"] - after["samples"],
        },
        "views_agree": views[0]["cost"] == views[1]["cost"] == after_replay["samples"],
        "warmup_errors": sum(1 for s, _ in warm if s != 200),
        "p": {"connections_per_client": SHARD},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=5.0, help="simulated backend delay per request")
    parser.add_argument("--quick", action="store_true", help="2,000 requests")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "load.json")
    args = parser.parse_args()
    if args.quick:
        args.requests = 2000
    work = Path(tempfile.mkdtemp(prefix="apportion-load-"))
    try:
        report = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    rss = report["rss_mb"]
    print(
        f"{report['requests']} requests at {report['concurrency']} in flight through 2 gateways sharing Redis: "
        f"errors {report['errors'] or 'none'}, {report['throughput_rps']:.0f} req/s"
    )
    print(
        f"resident memory, MB: gateway 1 {rss['start'][0]:.0f} → {rss['end'][0]:.0f}, "
        f"gateway 2 {rss['start'][1]:.0f} → {rss['end'][1]:.0f}"
    )
    print(
        f"samples served {report['samples_served']}, ledger {report['ledger_samples']} "
        f"(queries {report['ledger_queries']}); per tenant {report['per_tenant_served']} vs "
        f"{report['per_tenant_ledger']}: {'EXACT' if report['exact'] else 'MISMATCH'}"
    )
    print(
        f"replaying every request id: {report['replay']['errors']} errors, ledger moved by "
        f"{report['replay']['ledger_moved_by']} samples; both gateways' /v1/budget agree: {report['views_agree']}"
    )


if __name__ == "__main__":
    main()
