"""Which backend serves which model: `--backend URL` is asked for its models (`GET /v1/models`, what vLLM's
`--served-model-name` sets), `--backend NAME=URL` pins one to the policy's model NAME.

Found once at start-up, before the gateway listens, so that a policy model no backend serves stops it with
one line. With a one-model policy every unpinned backend serves that model, whatever it calls it (a backend
down at start is still used, and asked its model's name when it is back). Every model a backend lists can also
be asked for by name: such a request skips the policy (see `Gateway.direct`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from service.settings import SettingsError

_PINNED = re.compile(r"^([^=\s/:]+)=(https?://\S+)$")


class FleetError(SettingsError):
    """A model the policy needs that no backend serves, or a pin to a model the policy does not have."""


@dataclass(frozen=True)
class BackendSpec:
    url: str
    pinned: str | None = None
    """The policy model this backend is pinned to (`NAME=URL`), None when it is asked what it serves."""


def parse_backend(text: str) -> BackendSpec:
    """`URL` or `NAME=URL`."""
    found = _PINNED.match(text.strip())
    if found:
        return BackendSpec(found.group(2).rstrip("/"), found.group(1))
    return BackendSpec(text.strip().rstrip("/"))


@dataclass
class Fleet:
    """Backends per policy model (url, model name to send), and per backend model for direct requests."""

    pools: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    direct: dict[str, list[str]] = field(default_factory=dict)
    """Backend model id → the URLs that list it."""
    listed: dict[str, list[str] | str] = field(default_factory=dict)
    """URL → the model ids it listed, or why it could not be asked."""


def discover(
    specs: Sequence[BackendSpec],
    models: Sequence[str],
    backend_model: str | None = None,
    timeout: float = 5.0,
    listed: Mapping[str, list[str] | str] | None = None,
) -> Fleet:
    """The fleet that serves `models` (the policy's); `FleetError` when one of them has no backend.

    `listed` replaces asking the backends (what each URL lists, or why it could not be asked)."""
    fleet = Fleet(pools={model: [] for model in models})
    fleet.listed = dict(listed) if listed is not None else {spec.url: _models_of(spec.url, timeout) for spec in specs}
    one = len(models) == 1
    for spec in specs:
        ids = fleet.listed[spec.url]
        ids = ids if isinstance(ids, list) else []
        for model_id in ids:
            fleet.direct.setdefault(model_id, []).append(spec.url)
        if spec.pinned is not None:
            if spec.pinned not in fleet.pools:
                raise FleetError(
                    f"--backend {spec.pinned}={spec.url}: the policy has no model {spec.pinned!r} "
                    f"(its models: {', '.join(models)})"
                )
            name = backend_model or (spec.pinned if spec.pinned in ids else ids[0] if ids else spec.pinned)
            fleet.pools[spec.pinned].append((spec.url, name))
        elif one:
            fleet.pools[models[0]].append((spec.url, backend_model or (ids[0] if ids else None)))
        else:
            for model in models:
                if model in ids:
                    fleet.pools[model].append((spec.url, model))
    missing = [model for model, backends in fleet.pools.items() if not backends]
    if missing:
        seen = "; ".join(
            f"{url} lists {', '.join(ids) or 'no model'}" if isinstance(ids, list) else f"{url}: {ids}"
            for url, ids in fleet.listed.items()
        )
        raise FleetError(
            f"no backend serves the policy's model {missing[0]!r} ({seen}); start one with "
            f"--served-model-name {missing[0]}, or pin one with --backend {missing[0]}=URL"
        )
    return fleet


def _models_of(url: str, timeout: float) -> list[str] | str:
    """The model ids a backend lists, or why it could not be asked."""
    try:
        response = httpx.get(f"{url}/models", timeout=timeout)
        response.raise_for_status()
        return [str(card["id"]) for card in response.json()["data"]]
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    except (ValueError, KeyError, TypeError):
        return "not an OpenAI-compatible /v1/models"
