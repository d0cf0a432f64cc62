"""`apportion key`: a new API key for a tenant, and the tenants-file entry that stores only its hash."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.options import Parser, UsageError, positive_float
from service.tenants import key_hash, new_key

HELP = "make an API key for a tenant"
DESCRIPTION = "Print a new API key (once) and the tenants-file entry that stores its hash."
EXAMPLES = """\
examples:
  apportion key --tenant search
  apportion key --tenant tutor --budget 1000000    # at most a million (samples, or the gateway's cost units)
  apportion key --tenant lab --budget 50000 --budget-period daily   # an allowance that starts again each day

The key is shown once, on stderr; the entry on stdout keeps only its hash. The tenants file that
apportion serve --tenants reads is a JSON list of such entries.
"""
PARENTS = ()


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--tenant", required=True, help="the tenant's name")
    parser.add_argument(
        "--budget",
        type=positive_float,
        help="what the tenant may spend, in the gateway's cost units (samples, or tokens × price); no limit",
    )
    parser.add_argument(
        "--budget-period",
        choices=("daily", "monthly"),
        help="make the budget an allowance per calendar day or month (UTC) instead of for all time",
    )


def run(args: argparse.Namespace) -> int:
    secret = new_key()
    if args.budget_period and args.budget is None:
        raise UsageError("--budget-period needs a --budget")
    entry: dict[str, Any] = {"tenant": args.tenant, "key_sha256": key_hash(secret), "budget": args.budget}
    if args.budget_period:
        entry["budget_period"] = args.budget_period
    print(
        f"API key for {args.tenant} (shown once; give it to the tenant, keep only the hash):\n{secret}", file=sys.stderr
    )
    print(json.dumps(entry))
    return 0
