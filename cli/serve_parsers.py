"""Arguments of the serving commands: `serve`, `simulate`, `key` and `demo` (registered by `cli.main`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

_SERVE_EXAMPLES = """\
examples:
  apportion serve --model models/gsm8k-b4 --backend http://127.0.0.1:8000/v1
  apportion serve --model models/gsm8k-b4 --backend http://vllm-a:8000/v1 --backend http://vllm-b:8000/v1 \\
      --target-samples 3 --redis redis://127.0.0.1:6379/0 --tenants tenants.json --port 8080

Every flag can also be set as an environment variable: APPORTION_MODEL, APPORTION_BACKENDS (a JSON list),
APPORTION_TARGET_SAMPLES, APPORTION_REDIS, ...; the admin key only as APPORTION_ADMIN_KEY (a flag would
show it to anyone who can list processes). Clients use any OpenAI SDK with
base_url http://HOST:PORT/v1 and model "apportion"; see GET /docs for the API.
"""

_SIMULATE_EXAMPLES = """\
examples:
  apportion simulate --outcomes out/example.jsonl --port 8000
  apportion simulate --outcomes ../shared/data/gsm8k-llama2-13b.jsonl --latency-ms 50

Known questions are answered from their recorded samples; unknown ones from a synthetic model
(service/simulator.py says how).
"""

_DEMO_EXAMPLES = """\
examples:
  apportion demo
  apportion demo --outcomes ../shared/data/gsm8k-llama2-13b.jsonl --budget 4 --queries 2000
"""


def add_serving_commands(sub: Any, positive_float: Callable[[str], float], positive_int: Callable[[str], int]) -> None:
    from cli import demo, serve  # imported on use: they pull in the web stack

    def run(name: str) -> Callable[[argparse.Namespace], int]:
        module = demo if name == "demo" else serve
        return lambda args: int(getattr(module, name)(args))

    raw = argparse.RawDescriptionHelpFormatter
    s = sub.add_parser(
        "serve",
        help="run the gateway in front of OpenAI-compatible backends",
        description="Serve an OpenAI-compatible API that picks each query's sample count with a "
        "trained policy and keeps the fleet's mean samples per query on target.",
        epilog=_SERVE_EXAMPLES,
        formatter_class=raw,
    )
    s.add_argument("--model", metavar="MODEL_DIR", help="a policy from apportion train")
    s.add_argument(
        "--backend",
        dest="backends",
        action="append",
        default=[],
        metavar="URL",
        help="an OpenAI-compatible base URL (repeat for several; balanced by outstanding requests)",
    )
    s.add_argument(
        "--target-samples",
        type=positive_float,
        metavar="X",
        help="fleet budget: mean samples per query (default: the budget the model was trained at)",
    )
    s.add_argument("--redis", metavar="URL", help="share the ledger and λ with other replicas (redis://host:port/0)")
    s.add_argument(
        "--redis-failure",
        choices=("open", "closed"),
        help="with Redis unreachable: serve from a local ledger and flag it (open, default) or refuse",
    )
    s.add_argument("--tenants", metavar="FILE", help="JSON list of tenants (see apportion key)")
    s.add_argument("--host", help="address to listen on (127.0.0.1)")
    s.add_argument("--port", type=int, help="port to listen on (8080)")
    s.add_argument(
        "--fanout",
        choices=("auto", "n", "parallel"),
        help="how k samples are asked for: one request with n=k, k requests, or detect (auto)",
    )
    s.add_argument("--answer-pattern", metavar="REGEX", help="regex whose first group is a sample's final answer")
    s.add_argument("--served-model", help="the model id clients ask for (apportion)")
    s.add_argument("--backend-model", help="model name sent to the backends (default: the one they list)")
    s.add_argument("--temperature", type=float, help="sampling temperature when a request gives none (0.8)")
    s.add_argument("--max-tokens", type=positive_int, help="max_tokens per sample when a request gives none (512)")
    s.add_argument(
        "--max-samples", type=positive_int, help="no query draws more samples, whatever the policy says (64)"
    )
    s.add_argument("--horizon", type=positive_float, help="queries over which an overspend is repaid (200)")
    s.add_argument("--request-timeout", type=positive_float, help="seconds before a query is given up (120)")
    s.add_argument("--backend-timeout", type=positive_float, help="seconds per backend request (60)")
    s.add_argument("--retries", type=int, help="retries of a failed backend request, on another backend (2)")
    s.add_argument("--max-request-bytes", type=positive_int, help="larger request bodies get 413 (1000000)")
    s.add_argument("--log-text", action="store_true", default=None, help="log prompts and answers (off)")
    s.add_argument("--workers", type=positive_int, default=1, help="uvicorn worker processes (1; needs --redis)")
    s.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    s.set_defaults(run=run("serve"))

    m = sub.add_parser(
        "simulate",
        help="an OpenAI-compatible backend that replays recorded samples",
        description="Serve vLLM's OpenAI API shapes from an outcome file: no GPU, no model.",
        epilog=_SIMULATE_EXAMPLES,
        formatter_class=raw,
    )
    m.add_argument("--outcomes", required=True, metavar="FILE", help="recorded samples, .jsonl or .jsonl.gz")
    m.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    m.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    m.add_argument("--model", default="simulated", help="the model id it reports (simulated)")
    m.add_argument("--latency-ms", type=float, default=0.0, help="fixed delay per request, in ms (0)")
    m.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    m.set_defaults(run=run("simulate"))

    k = sub.add_parser(
        "key",
        help="make an API key for a tenant",
        description="Print a new API key (once) and the tenants-file entry that stores its hash.",
    )
    k.add_argument("--tenant", required=True, help="the tenant's name")
    k.add_argument("--budget", type=positive_int, help="samples the tenant may spend (no limit)")
    k.set_defaults(run=run("key"))

    d = sub.add_parser(
        "demo",
        help="simulator + gateway on this machine: spend and accuracy against uniform",
        description="Train the default policy on half the questions, start the simulated backend "
        "and the gateway on loopback, send the other half through it, and compare with uniform "
        "allocation at the same spend. No GPU, no Redis.",
        epilog=_DEMO_EXAMPLES,
        formatter_class=raw,
    )
    d.add_argument("--outcomes", metavar="FILE", help="recorded samples (default: a synthetic file)")
    d.add_argument("--model", metavar="MODEL_DIR", help="serve this model instead of training one")
    d.add_argument("--budget", type=positive_float, default=4.0, help="target mean samples per query (4)")
    d.add_argument("--queries", type=positive_int, default=1000, help="queries to send (1000)")
    d.add_argument("--concurrency", type=positive_int, default=16, help="queries in flight (16)")
    d.add_argument("--latency-ms", type=float, default=0.0, help="simulated backend delay per request (0)")
    d.add_argument("--seed", type=int, default=0, help="seed for the split and the stream (0)")
    d.set_defaults(run=run("demo"))
