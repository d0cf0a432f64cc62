"""`apportion key`: a new API key for a tenant, and the tenants-file entry that stores only its hash."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.options import Parser, positive_int
from service.tenants import key_hash, new_key

HELP = "make an API key for a tenant"
DESCRIPTION = "Print a new API key (once) and the tenants-file entry that stores its hash."
EXAMPLES = """\
examples:
  apportion key --tenant search
  apportion key --tenant tutor --budget 1000000    # at most a million samples in all

The key is shown once, on stderr; the entry on stdout keeps only its hash. The tenants file that
apportion serve --tenants reads is a JSON list of such entries.
"""
PARENTS = ()


def add_arguments(parser: Parser) -> None:
    parser.add_argument("--tenant", required=True, help="the tenant's name")
    parser.add_argument("--budget", type=positive_int, help="samples the tenant may spend in all (no limit)")


def run(args: argparse.Namespace) -> int:
    secret = new_key()
    entry: dict[str, Any] = {"tenant": args.tenant, "key_sha256": key_hash(secret), "budget": args.budget}
    print(
        f"API key for {args.tenant} (shown once; give it to the tenant, keep only the hash):\n{secret}", file=sys.stderr
    )
    print(json.dumps(entry))
    return 0
