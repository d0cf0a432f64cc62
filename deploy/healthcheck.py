#!/usr/bin/env python3
"""Container health check: exit 0 when URL answers 2xx within the timeout, 1 otherwise (standard library only).

Installed in the image as `apportion-healthcheck`. With no argument it checks the gateway's liveness endpoint,
http://127.0.0.1:$APPORTION_PORT/healthz (port 8080 by default); `apportion-healthcheck http://127.0.0.1:8000/health`
checks the simulator. python:3.11-slim has no curl or wget, hence this script.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def check(url: str, timeout: float = 4.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            status = int(reply.status)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if 200 <= status < 300:
        return 0
    print(f"unhealthy: {url}: HTTP {status}", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else f"http://127.0.0.1:{os.environ.get('APPORTION_PORT', '8080')}/healthz"
    return check(url)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
