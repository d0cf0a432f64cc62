"""Actions over several models: k samples of one model, or a cascade that samples a cheap model first and
escalates to a dearer one when its answers disagree. And what an action costs: samples or tokens, times a
price per model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from oracle.errors import OracleInputError

CASCADE_THRESHOLDS = (0.5, 0.75, 1.0)
"""Escalate when the first model's top answer has less than this share of its samples (1.0: unless unanimous)."""


@dataclass(frozen=True)
class Action:
    """`samples` of `model`; a cascade then draws `then_samples` of `then` when the top answer's share of the
    first model's samples is below `below`."""

    model: str
    samples: int
    then: str | None = None
    then_samples: int = 0
    below: float = 0.0

    @property
    def cascade(self) -> bool:
        return self.then is not None

    def label(self) -> str:
        first = f"{self.model}×{self.samples}"
        return first if self.then is None else f"{first}→{self.then}×{self.then_samples} if share<{self.below:g}"

    def record(self) -> dict[str, object]:
        """The action as label files and reports write it."""
        row: dict[str, object] = {"model": self.model, "action": self.samples}
        if self.then is not None:
            row |= {"then": self.then, "then_samples": self.then_samples, "escalate_below": self.below}
        return row


def menu(
    recorded: Mapping[str, int],
    ks: Sequence[int],
    prices: Mapping[str, float],
    cascades: bool = True,
) -> list[Action]:
    """Every model at each k it has recorded samples for (`recorded`: the most any question has), then, with
    several models, cascades from each model to each dearer one: k samples of the first (up to a quarter of
    its largest k), one or two of the second, escalating at each threshold."""
    actions = [Action(model, k) for model in recorded for k in ks if k <= recorded[model]]
    missing = [model for model in recorded if not any(a.model == model for a in actions)]
    if missing:
        raise OracleInputError(f"model {missing[0]!r} has fewer recorded samples than the smallest action")
    if cascades and len(recorded) > 1:
        by_price = sorted(recorded, key=lambda model: prices[model])
        for low, cheap in enumerate(by_price):
            for dear in by_price[low + 1 :]:
                if prices[dear] <= prices[cheap]:
                    continue
                firsts = [k for k in ks if k <= recorded[cheap] and k <= max(2, max(ks) // 4)]
                thens = [k for k in ks if k <= min(2, recorded[dear])]
                actions += [Action(cheap, k, dear, j, t) for k in firsts for j in thens for t in CASCADE_THRESHOLDS]
    return actions


def parse_prices(given: Sequence[tuple[str, float]], models: Sequence[str]) -> dict[str, float]:
    """Each model's price per sample (or per token): 1 unless `--price NAME=X` says otherwise."""
    prices = {model: 1.0 for model in models}
    for name, price in given:
        if name not in prices:
            raise OracleInputError(f"--price {name}: no model of that name (models: {', '.join(models)})")
        if not (math.isfinite(price) and price > 0):
            raise OracleInputError(f"--price {name}: must be a positive, finite number")
        prices[name] = float(price)
    return prices
