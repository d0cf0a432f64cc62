"""`apportion serve`, `simulate` and `key`: the gateway, the embedded backend, and tenants' API keys."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis
import uvicorn
from pydantic import ValidationError

from cli.outcome_files import DataFileError, read_outcomes
from service.app import create_app
from service.settings import Settings
from service.simulator import Simulator, create_simulator_app
from service.tenants import TenantFileError, key_hash, new_key

_LIST_SETTINGS = {"backends"}
_FLAGS = {"backends": "--backend"}


def settings_from(args: argparse.Namespace) -> Settings:
    """Flags given on the command line win over `APPORTION_*` variables, which win over the defaults."""
    given = {
        name: value
        for name, value in vars(args).items()
        if name in Settings.model_fields and value is not None and value != []
    }
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        flag = _FLAGS.get(field, "--" + field.replace("_", "-"))
        message = first["msg"].removeprefix("Value error, ")
        raise DataFileError(f"{flag} (or APPORTION_{field.upper()}): {message}") from None


def serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if settings.redis and settings.redis_failure == "closed":
        _check_redis(settings.redis)
    if args.workers > 1:
        if settings.redis is None:
            raise DataFileError("--workers > 1 needs --redis: without it each worker would keep a ledger of its own")
        return _serve_workers(settings, args.workers)
    try:
        app = create_app(settings)
    except TenantFileError as exc:
        raise DataFileError(str(exc)) from None
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False)
    return 0


def _check_redis(url: str) -> None:
    """Failing closed, a gateway without its ledger would refuse every query: say so now, in one line."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise DataFileError(f"--redis {url}: Redis is unreachable ({exc}) and --redis-failure is closed") from None


def _serve_workers(settings: Settings, workers: int) -> int:
    """Several worker processes: each builds the app from the environment; metrics are combined on disk."""
    create_app(settings)  # fail here, once, with a clear line, rather than in every worker
    for name, value in settings.model_dump(exclude_none=True).items():
        plain = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        os.environ[f"APPORTION_{name.upper()}"] = json.dumps(plain) if name in _LIST_SETTINGS else str(plain)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="apportion-metrics-"))
    uvicorn.run(
        "service.app:create_app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        access_log=False,
    )
    return 0


def simulate(args: argparse.Namespace) -> int:
    questions = list(read_outcomes(Path(args.outcomes)))
    simulator = Simulator(questions, model=args.model, latency=args.latency_ms / 1000)
    print(
        f"simulating {len(simulator.recorded)} recorded questions from {args.outcomes} as model "
        f"{args.model!r} on http://{args.host}:{args.port}/v1",
        file=sys.stderr,
    )
    uvicorn.run(
        create_simulator_app(simulator), host=args.host, port=args.port, log_level=args.log_level, access_log=False
    )
    return 0


def key(args: argparse.Namespace) -> int:
    """Print a new API key once, and the entry (hash only) to add to the tenants file."""
    secret = new_key()
    entry: dict[str, Any] = {"tenant": args.tenant, "key_sha256": key_hash(secret), "budget": args.budget}
    print(
        f"API key for {args.tenant} (shown once; give it to the tenant, keep only the hash):\n{secret}", file=sys.stderr
    )
    print(json.dumps(entry))
    return 0
