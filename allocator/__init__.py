"""The learn stage: policies that decide a query's sample count, fitted on outcomes, judged by replay.

Pure numpy and scikit-learn: no files, network or Redis. The CLI reads outcome files and saves models.
"""

from allocator.base import Policy
from allocator.data import Decisions, Outcomes
from allocator.evaluate import Reference, Result, cross_validate
from allocator.registry import DEFAULT_POLICY, POLICIES

__all__ = ["DEFAULT_POLICY", "POLICIES", "Decisions", "Outcomes", "Policy", "Reference", "Result", "cross_validate"]
