"""Arguments of the commands that talk to backends: `serve`, `simulate`, `key`, `demo`, `collect` and
`pipeline` (registered by `cli.main`)."""

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

_COLLECT_EXAMPLES = """\
examples:
  apportion collect --questions gsm8k_test.jsonl --backend http://127.0.0.1:8000/v1 --samples 16 --out gsm8k.jsonl
  apportion collect --questions hf:gsm8k:main@test --backend http://vllm:8000/v1 --samples 32 --out gsm8k.jsonl
"""

_PIPELINE_EXAMPLES = """\
examples:
  apportion pipeline --questions gsm8k_test.jsonl --backend http://127.0.0.1:8000/v1 --samples 16 --out runs/gsm8k
"""

_DEMO_EXAMPLES = """\
examples:
  apportion demo
  apportion demo --outcomes ../shared/data/gsm8k-llama2-13b.jsonl --budget 4 --queries 2000
"""


def add_serving_commands(sub: Any, positive_float: Callable[[str], float], positive_int: Callable[[str], int]) -> None:
    def run(name: str) -> Callable[[argparse.Namespace], int]:
        def command(args: argparse.Namespace) -> int:
            import importlib  # imported on use: they pull in the web stack

            module = {"demo": "demo", "collect": "collect", "pipeline": "pipeline"}.get(name, "serve")
            return int(getattr(importlib.import_module(f"cli.{module}"), name)(args))

        return command

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

    drawing = argparse.ArgumentParser(add_help=False)  # what collect and pipeline share
    drawing.add_argument(
        "--questions",
        required=True,
        metavar="FILE",
        help="JSONL (ours, GSM8K's or MATH's format) or hf:NAME[:CONFIG][@SPLIT]",
    )
    drawing.add_argument("--backend", required=True, metavar="URL", help="OpenAI-compatible base URL")
    drawing.add_argument("--concurrency", type=positive_int, default=8, help="questions in flight (8)")

    c = sub.add_parser(
        "collect",
        parents=[drawing],
        help="draw and grade samples for a question set through a backend",
        description="Draw N samples per question from an OpenAI-compatible backend, grade each "
        "final answer against the gold one (math-aware), and append outcome records to --out. "
        "Interrupted, run it again: it resumes where it stopped.",
        epilog=_COLLECT_EXAMPLES,
        formatter_class=raw,
    )
    c.add_argument("--samples", type=positive_int, required=True, metavar="N", help="samples per question")
    c.add_argument("--out", required=True, metavar="FILE", help="outcome file to write or resume (.jsonl)")
    c.add_argument("--model", help="model name to ask the backend for (default: the one it lists)")
    c.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (0.8)")
    c.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (1.0)")
    c.add_argument("--max-tokens", type=positive_int, default=512, help="tokens per sample (512)")
    c.add_argument("--timeout", type=positive_float, default=300.0, help="seconds per backend request (300)")
    c.set_defaults(run=run("collect"))

    p = sub.add_parser(
        "pipeline",
        parents=[drawing],
        help="collect, label, train and evaluate in one go",
        description="Run collect → label → train → evaluate into one directory and print the "
        "command that serves the trained policy.",
        epilog=_PIPELINE_EXAMPLES,
        formatter_class=raw,
    )
    p.add_argument("--samples", type=positive_int, default=16, help="samples per question (16)")
    p.add_argument("--budget", type=positive_float, default=4.0, help="mean samples per query to train for (4)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for outcomes, labels, model and report")
    p.set_defaults(run=run("pipeline"))
