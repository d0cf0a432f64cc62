"""`apportion key`: a new API key for a tenant, and the tenants-file entry that stores only its hash."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.options import Subcommands, add_command, positive_int
from service.tenants import key_hash, new_key


def register(sub: Subcommands) -> None:
    k = add_command(
        sub,
        "key",
        run,
        help="make an API key for a tenant",
        description="Print a new API key (once) and the tenants-file entry that stores its hash.",
    )
    k.add_argument("--tenant", required=True, help="the tenant's name")
    k.add_argument("--budget", type=positive_int, help="samples the tenant may spend in all (no limit)")


def run(args: argparse.Namespace) -> int:
    secret = new_key()
    entry: dict[str, Any] = {"tenant": args.tenant, "key_sha256": key_hash(secret), "budget": args.budget}
    print(
        f"API key for {args.tenant} (shown once; give it to the tenant, keep only the hash):\n{secret}", file=sys.stderr
    )
    print(json.dumps(entry))
    return 0
