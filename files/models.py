"""A trained policy on disk: MODEL_DIR/policy.skops plus manifest.json, which says what it is and how it did.

skops is used rather than pickle so that loading runs no code by itself: only types from this project and
the libraries it trusts are accepted, and anything else is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import skops.io

from allocator.base import Policy
from files.errors import DataFileError

FORMAT_VERSION = 3  # 3: policies keep the prices they were trained with; 2: λ is `lam` (1 called it `price`)
POLICY_FILE = "policy.skops"
MANIFEST_FILE = "manifest.json"
_TRUSTED_MODULES = ("allocator.", "features.", "oracle.", "sklearn.", "numpy.", "scipy.", "builtins.")


def save_model(directory: Path, policy: Policy, manifest: dict[str, Any]) -> None:
    """Write the policy and its manifest into `directory`, replacing an earlier model there as a whole.

    Anything at `directory` that is not a model (a file, a folder with other things in it) is left alone
    and refused, so a mistyped --out can never delete a user's files.
    """
    directory = Path(directory)
    parent = directory.parent if str(directory.parent) else Path(".")
    if not parent.is_dir():
        raise DataFileError(f"{directory}: the directory {parent} does not exist")
    if directory.exists() and not _replaceable(directory):
        raise DataFileError(f"{directory}: exists and is not an apportion model; choose another --out")
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; a model is read by services running as other users
    retired = staging.with_name(staging.name + ".old")
    try:
        skops.io.dump(policy, staging / POLICY_FILE)
        digest = file_sha256(staging / POLICY_FILE)
        full = {"format_version": FORMAT_VERSION, **manifest, "policy_sha256": digest, "environment": environment()}
        (staging / MANIFEST_FILE).write_text(json.dumps(full, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        if directory.exists():
            directory.rename(retired)  # two renames: a reader sees the old model or the new, never half of one
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired.exists() and not directory.exists():
            retired.rename(directory)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _replaceable(directory: Path) -> bool:
    """An empty directory, or one holding nothing but a model's files."""
    return directory.is_dir() and {p.name for p in directory.iterdir()} <= {POLICY_FILE, MANIFEST_FILE}


def load_model(directory: Path) -> tuple[Policy, dict[str, Any]]:
    """Read a model written by `save_model`; every way it can be wrong is a `DataFileError` naming it."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise DataFileError(f"{directory}: not a model directory (no {MANIFEST_FILE}); train one with apportion train")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFileError(f"{manifest_path}: corrupt manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise DataFileError(f"{manifest_path}: corrupt manifest (not a JSON object)")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise DataFileError(
            f"{manifest_path}: model format version {version!r} is not supported "
            f"(this apportion reads version {FORMAT_VERSION}); train it again with apportion train"
        )
    policy_path = directory / POLICY_FILE
    if not policy_path.is_file():
        raise DataFileError(f"{policy_path}: missing")
    if file_sha256(policy_path) != manifest.get("policy_sha256"):
        raise DataFileError(f"{policy_path}: corrupt (its checksum does not match the manifest)")
    try:
        untrusted = skops.io.get_untrusted_types(file=policy_path)
        refused = [name for name in untrusted if not name.startswith(_TRUSTED_MODULES)]
        if refused:
            raise DataFileError(f"{policy_path}: refusing to load unexpected types {', '.join(refused)}")
        policy = skops.io.load(policy_path, trusted=untrusted)
    except DataFileError:
        raise
    except Exception as exc:  # skops raises many kinds for a damaged archive
        raise DataFileError(f"{policy_path}: corrupt ({type(exc).__name__}: {exc})") from None
    if not isinstance(policy, Policy):
        raise DataFileError(f"{policy_path}: holds a {type(policy).__name__}, not a policy")
    return policy, manifest


def environment() -> dict[str, str]:
    """Library versions, so that a model's behaviour can be traced to the code that made it."""
    versions = {"python": platform.python_version()}
    for package in ("apportion", "numpy", "scikit-learn", "scipy", "skops", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    return versions


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
