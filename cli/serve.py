"""`apportion serve`: the gateway in front of OpenAI-compatible backends."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cli.options import MisconfiguredFleet, Parser, UsageError, positive_float, positive_int

if TYPE_CHECKING:
    from service.settings import Settings

_NUMBERS = (  # flag, type, help: the gateway's numeric settings (defaults are `service.settings.Settings`'s)
    ("--temperature", float, "sampling temperature when a request gives none (0.8)"),
    ("--max-tokens", positive_int, "max_tokens per sample when a request gives none (512)"),
    ("--max-samples", positive_int, "no query draws more samples, whatever the policy says (64)"),
    ("--horizon", positive_float, "queries over which an overspend is repaid (100)"),
    ("--request-timeout", positive_float, "seconds before a query is given up (120)"),
    ("--backend-timeout", positive_float, "seconds per backend request (60)"),
    ("--retries", int, "retries of a failed backend request, on another backend (2)"),
    ("--max-request-bytes", positive_int, "larger request bodies get 413 (1000000)"),
    ("--max-reply-bytes", positive_int, "bytes per sample a backend's reply may take; more: 502 (1048576)"),
    ("--max-in-flight-per-tenant", positive_int, "a tenant's requests in flight; more: 429 (64)"),
    ("--idempotency-ttl", positive_float, "seconds a reply is kept for replays of its request id (86400)"),
    ("--idempotency-max-bytes", positive_int, "largest reply kept for replays (1000000)"),
    ("--header-timeout", positive_float, "seconds to send a request's headers (10)"),
    ("--body-timeout", positive_float, "seconds to send a request's body; then 408 (30)"),
    ("--keep-alive-timeout", positive_float, "seconds an idle connection stays open (5)"),
)
_LIST_SETTINGS = {"backends", "prices"}
_FLAGS = {"backends": "--backend", "prices": "--price"}


HELP = "run the gateway in front of OpenAI-compatible backends"
DESCRIPTION = (
    "Serve an OpenAI-compatible API that picks each query's models and sample counts with a trained policy "
    "and keeps the fleet's mean cost per query on target (samples, or tokens, times each model's price)."
)
EXAMPLES = """\
examples:
  apportion serve --model models/gsm8k-b4 --backend http://127.0.0.1:8000/v1
  apportion serve --model models/gsm8k-b4 --backend http://vllm-a:8000/v1 --backend http://vllm-b:8000/v1 \\
      --target-samples 3 --redis redis://127.0.0.1:6379/0 --tenants tenants.json --port 8080
  apportion serve --model models/pair-c8 --backend http://small:8000/v1 --backend gpt-4=http://large:8000/v1 \\
      --cost tokens --price gpt-4=20 --target-cost 4000

A policy trained on two models cascades across them: each backend is asked which models it serves
(GET /v1/models, vLLM's --served-model-name), or pinned with NAME=URL; a model of the policy that no backend
serves stops start-up. Costs are in the units the model was trained with unless --cost and --price say
otherwise; in tokens, a query is charged each model's price times the completion tokens its backend reported.

Without --tenants the API is open: every caller is admitted, as tenant "anonymous" (a warning is logged at
start). Give a tenants file (see apportion key) to require keys, and APPORTION_ADMIN_KEY for the admin.

Every flag can also be set as an environment variable: APPORTION_MODEL, APPORTION_BACKENDS and
APPORTION_PRICES (JSON lists), APPORTION_TARGET_COST, APPORTION_REDIS, ...; the admin key only as
APPORTION_ADMIN_KEY (a flag would show it to anyone who can list processes). Clients use any OpenAI SDK
with base_url http://HOST:PORT/v1 and model "apportion" (or a backend's own model: one sample, no policy);
see GET /docs for the API.
"""
PARENTS = ()


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--model", metavar="MODEL_DIR", help="a policy from apportion train")
    parser.add_argument(
        "--backend",
        dest="backends",
        action="append",
        default=[],
        metavar="[NAME=]URL",
        help="an OpenAI-compatible base URL, or NAME=URL to pin it to the policy's model NAME (repeat for "
        "several; a model's backends are balanced by outstanding requests)",
    )
    parser.add_argument(
        "--target-cost",
        type=positive_float,
        metavar="X",
        help="fleet budget: mean cost per query (default: the budget the model was trained at); it must be "
        "within what the policy can spend",
    )
    parser.add_argument(
        "--target-samples", type=positive_float, metavar="X", help="the same, when cost is plain samples"
    )
    parser.add_argument(
        "--price",
        dest="prices",
        action="append",
        default=[],
        metavar="NAME=X",
        help="a model's price per sample or token (default: the prices the model was trained with)",
    )
    parser.add_argument(
        "--cost",
        choices=("samples", "tokens"),
        help="charge samples or the completion tokens the backends report, times the price (default: the model's unit)",
    )
    parser.add_argument(
        "--redis", metavar="URL", help="share the ledger and λ with other replicas (redis://host:port/0)"
    )
    parser.add_argument(
        "--redis-failure",
        choices=("open", "closed"),
        help="with Redis unreachable: serve from a local ledger and flag it (open, default) or refuse",
    )
    parser.add_argument("--tenants", metavar="FILE", help="JSON list of tenants (see apportion key)")
    parser.add_argument("--host", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (8080)")
    parser.add_argument(
        "--fanout",
        choices=("auto", "n", "parallel"),
        help="how k samples are asked for: one request with n=k, k requests, or detect (auto)",
    )
    parser.add_argument("--answer-pattern", metavar="REGEX", help="regex whose first group is a sample's final answer")
    parser.add_argument("--served-model", help="the model id clients ask for (apportion)")
    parser.add_argument("--backend-model", help="model name sent to the backends (default: the one they list)")
    for flag, kind, meaning in _NUMBERS:
        parser.add_argument(flag, type=kind, help=meaning)
    parser.add_argument(
        "--public-metrics",
        action="store_true",
        default=None,
        help="serve /metrics without the admin key (it names every tenant and its spend; off)",
    )
    parser.add_argument("--log-text", action="store_true", default=None, help="log prompts and answers (off)")
    parser.add_argument("--workers", type=positive_int, default=1, help="uvicorn worker processes (1; needs --redis)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from files.errors import DataFileError
    from service.app import create_app
    from service.fleet import FleetError
    from service.settings import SettingsError
    from service.tenants import TenantFileError

    settings = settings_from(args)
    if settings.redis and settings.redis_failure == "closed":
        _check_redis(settings.redis)
    if args.workers > 1 and settings.redis is None:
        raise UsageError("--workers > 1 needs --redis: without it each worker would keep a ledger of its own")
    try:
        app = create_app(settings)  # with workers too: fail here, once, with a clear line, not in every worker
    except TenantFileError as exc:
        raise DataFileError(str(exc)) from None
    except FleetError as exc:
        raise MisconfiguredFleet(str(exc)) from None
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    from service.connections import GuardedHttpToolsProtocol

    server = {
        "host": settings.host,
        "port": settings.port,
        "log_level": args.log_level,
        "access_log": False,
        "http": GuardedHttpToolsProtocol,
        "timeout_keep_alive": settings.keep_alive_timeout,
    }
    if args.workers > 1:
        _export(settings)
        uvicorn.run("service.app:create_app_from_environment", factory=True, workers=args.workers, **server)
    else:
        uvicorn.run(app, **server)
    return 0


def settings_from(args: argparse.Namespace) -> Settings:
    """Flags given on the command line win over `APPORTION_*` variables, which win over the defaults."""
    from pydantic import Field, ValidationError

    from service.settings import Settings

    class CommandSettings(Settings):
        model: Path = Field(description="the command serves a model directory (a library caller may pass a policy)")

    given = {
        name: value
        for name, value in vars(args).items()
        if name in Settings.model_fields and value is not None and value != []
    }
    try:
        return CommandSettings(**given)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        flag = _FLAGS.get(field, "--" + field.replace("_", "-"))
        message = first["msg"].removeprefix("Value error, ")
        raise UsageError(f"{flag} (or APPORTION_{field.upper()}): {message}") from None


def _check_redis(url: str) -> None:
    """Failing closed, a gateway without its ledger would refuse every query: say so now, in one line."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise UsageError(f"--redis {url}: Redis is unreachable ({exc}) and --redis-failure is closed") from None


def _export(settings: Settings) -> None:
    """Worker processes build the app from the environment; metrics are combined on disk."""
    for name, value in settings.model_dump(exclude_none=True).items():
        plain = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        os.environ[f"APPORTION_{name.upper()}"] = json.dumps(plain) if name in _LIST_SETTINGS else str(plain)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="apportion-metrics-"))
