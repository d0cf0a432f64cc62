"""The gateway's settings: flags of `apportion serve`, or environment variables prefixed `APPORTION_`.

List settings take JSON in the environment (`APPORTION_BACKENDS='["http://a:8000/v1","http://b:8000/v1"]'`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.backends import Fanout


class SettingsError(ValueError):
    """Settings that each pass on their own but cannot serve together (no model, an unreachable target)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APPORTION_", extra="forbid")

    model: Path | None = Field(default=None, description="a trained policy: the MODEL_DIR that `apportion train` wrote")
    backends: list[str] = Field(
        min_length=1,
        description="OpenAI-compatible base URLs, e.g. http://vllm:8000/v1, or NAME=URL to pin one to the policy's "
        "model NAME",
    )
    target_cost: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="fleet budget: mean cost per query, in the model's units (default: the model's budget)",
    )
    target_samples: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="the target when cost is in samples (target_cost's alias)"
    )
    prices: list[str] = Field(
        default_factory=list, description="NAME=X: a model's price per sample or token (default: the model's)"
    )
    cost: Literal["samples", "tokens"] | None = Field(
        default=None, description="what a cost counts: samples or completion tokens, times the price (the model's)"
    )
    redis: str | None = Field(default=None, description="redis://host:port/db for a ledger shared by replicas")
    redis_prefix: str = "apportion"
    redis_failure: Literal["open", "closed"] = Field(
        default="open", description="with Redis down: serve from a local ledger (open) or refuse (closed)"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    served_model: str = Field(default="apportion", description="the model id clients ask for")
    backend_model: str | None = Field(default=None, description="model name sent to backends (default: theirs)")
    fanout: Fanout = Field(default="auto", description="n: one request with n; parallel: n requests; auto: detect")
    temperature: float = Field(default=0.8, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=512, ge=1)
    max_samples: int = Field(default=64, ge=1, description="no query draws more, whatever the policy says")
    answer_pattern: str | None = Field(default=None, description="regex whose first group is the final answer")
    horizon: float = Field(default=100, ge=1, description="queries over which an overspend is repaid")
    request_timeout: float = Field(default=120, gt=0, description="seconds before a query is answered or given up")
    backend_timeout: float = Field(default=60, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    tenants: Path | None = Field(default=None, description="JSON file of tenants and their key hashes")
    admin_key: SecretStr | None = Field(default=None, description="key that may change the fleet target")
    max_request_bytes: int = Field(default=1_000_000, ge=1024)
    max_reply_bytes: int = Field(
        default=1_048_576, ge=1024, description="bytes per sample a backend's reply may take (larger: 502)"
    )
    max_in_flight_per_tenant: int = Field(default=64, ge=1, description="requests in flight per tenant (429 beyond)")
    idempotency_ttl: float = Field(default=86_400, gt=0, description="seconds a reply is kept for replays of its id")
    idempotency_max_bytes: int = Field(default=1_000_000, ge=1024, description="largest reply kept for replays")
    header_timeout: float = Field(default=10, gt=0, description="seconds a client has to send a request's headers")
    body_timeout: float = Field(default=30, gt=0, description="seconds a client has to send a request's body")
    keep_alive_timeout: float = Field(default=5, gt=0, description="seconds an idle connection is kept open")
    public_metrics: bool = Field(default=False, description="serve /metrics without the admin key")
    log_text: bool = Field(default=False, description="log prompts and answers (off: they may be private)")

    @field_validator("backends")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not re.match(r"^([^=\s/:]+=)?https?://[^/\s]+", url):
                raise ValueError(f"{url!r} is not an http(s) URL such as http://127.0.0.1:8000/v1 (or NAME=URL)")
        return urls

    @field_validator("prices")
    @classmethod
    def _prices(cls, prices: list[str]) -> list[str]:
        for given in prices:
            name, _, value = given.partition("=")
            try:
                price = float(value)
            except ValueError:
                price = float("nan")
            if not name or not (math.isfinite(price) and price > 0):
                raise ValueError(f"{given!r}: give NAME=X with a positive price X")
        return prices

    def price_table(self) -> dict[str, float]:
        return {name: float(value) for name, _, value in (given.partition("=") for given in self.prices)}

    @field_validator("answer_pattern")
    @classmethod
    def _pattern(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return pattern
