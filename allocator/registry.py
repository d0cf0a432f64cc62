"""Every policy by name, and the one `apportion train` uses unless told otherwise: one set for one model's
outcomes (how many samples), one for several models' (which model, how many, and whether to escalate)."""

from __future__ import annotations

from collections.abc import Callable

from allocator.adaptive import Adaptive
from allocator.base import Policy
from allocator.baselines import LongerGetsMore, Uniform
from allocator.cascade import CascadingAdaptive
from allocator.learned import Imitation, PlugIn
from allocator.published import AdaptiveConsistency, EarlyStoppingConsistency, TopTwoMargin
from allocator.routing import FixedCascade, RandomRouting, Router

POLICIES: dict[str, Callable[[], Policy]] = {
    "uniform": Uniform,
    "heuristic": LongerGetsMore,
    "imitation-lr": lambda: Imitation("logistic"),
    "imitation-gbt": lambda: Imitation("boosting"),
    "plugin": PlugIn,
    "adaptive": Adaptive,
    "adaptive-consistency": AdaptiveConsistency,
    "esc": EarlyStoppingConsistency,
    "margin": TopTwoMargin,
}
"""With one model the published adaptive-sampling rules are baselines for `adaptive` (see allocator.published)."""
FLEET_POLICIES: dict[str, Callable[[], Policy]] = {
    "random-routing": RandomRouting,
    "fixed-cascade": FixedCascade,
    "router": Router,
    "imitation-lr": lambda: Imitation("logistic"),
    "plugin": PlugIn,
    "adaptive": CascadingAdaptive,
}
"""With several models: random routing and the best fixed cascade are the baselines (fitted in-fold too)."""
DEFAULT_POLICY = "adaptive"  # the best deployable policy in the README's cross-validated results


def policies_for(models: int) -> dict[str, Callable[[], Policy]]:
    return POLICIES if models == 1 else FLEET_POLICIES
