"""Every policy by name, and the one `apportion train` uses unless told otherwise."""

from __future__ import annotations

from collections.abc import Callable

from allocator.adaptive import Adaptive
from allocator.base import Policy
from allocator.baselines import LongerGetsMore, Uniform
from allocator.learned import Imitation, PlugIn

POLICIES: dict[str, Callable[[], Policy]] = {
    "uniform": Uniform,
    "heuristic": LongerGetsMore,
    "imitation-lr": lambda: Imitation("logistic"),
    "imitation-gbt": lambda: Imitation("boosting"),
    "plugin": PlugIn,
    "adaptive": Adaptive,
}
DEFAULT_POLICY = "adaptive"  # the best deployable policy in the README's cross-validated results
