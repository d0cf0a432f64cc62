"""What a query costs: each model's samples or completion tokens (as its backend reported them), times its price.

The units are the ones the policy was trained in (`apportion train --cost --price`), so the fleet target, the
ledger and the quotas all speak what the operator pays; one model at price 1 in samples is the plain count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

CostUnit = Literal["samples", "tokens"]


@dataclass(frozen=True)
class Prices:
    per_unit: Mapping[str, float]
    """Price per sample or per token, by model name (policy or backend model); 1 for any other."""
    unit: CostUnit = "samples"
    aliases: Mapping[str, str] = field(default_factory=dict)
    """A backend's own name for a policy model it was pinned to serve (priced as that model)."""

    def price(self, model: str) -> float:
        return float(self.per_unit.get(model, self.per_unit.get(self.aliases.get(model, ""), 1.0)))

    def units(self, samples: int, tokens: int) -> int:
        """What a draw is charged for: its samples, or the completion tokens the backend reported."""
        return tokens if self.unit == "tokens" else samples

    def cost(self, model: str, samples: int, tokens: int) -> float:
        return self.price(model) * self.units(samples, tokens)

    def most(self, model: str, max_tokens: int) -> float:
        """The most one sample can cost (max_tokens of it, in tokens): what a quota holds for each."""
        return self.price(model) * (max_tokens if self.unit == "tokens" else 1)

    @property
    def label(self) -> str:
        """What a cost counts, for messages: plain samples, or priced units."""
        if self.unit == "samples" and all(p == 1 for p in self.per_unit.values()):
            return "samples"
        return f"cost units ({self.unit} × price)"
