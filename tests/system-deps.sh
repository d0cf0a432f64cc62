#!/usr/bin/env bash
# What `make test` needs from the system besides Python: redis-server (the suite starts its own on a free port)
# and Debian's chromium (the dashboard tests drive it through Playwright). Installed with apt-get where this
# runs as root (CI, containers); otherwise one line says what to run, before anything else is built.
set -euo pipefail

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium)
((${#missing[@]})) || exit 0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} with apt-get: the tests need them besides Python" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    exit 0
fi
echo "make test needs ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}', then make test again" >&2
exit 1
