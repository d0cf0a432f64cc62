"""Unique ids for replies, charges and reservations, without a random draw (a system call) per request."""

from __future__ import annotations

import itertools
import os
import secrets

_ids = itertools.count()
_prefix = secrets.token_hex(8)


def new_id() -> str:
    """64 random bits per process, then a counter."""
    return f"{_prefix}{next(_ids):x}"


def _new_prefix() -> None:
    global _prefix
    _prefix = secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_prefix)  # a forked worker must not repeat its parent's ids
