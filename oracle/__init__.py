"""The solve stage: accuracy curves from recorded samples and the Lagrangian oracle that allocates them.

Pure numpy: no files, network or Redis. The CLI (`cli/`) reads outcome files and calls in here.
"""

from oracle.curves import AGGREGATORS, Curves, accuracy_curves
from oracle.errors import OracleInputError
from oracle.frontier import Frontier, frontier
from oracle.outcomes import Question, Sample
from oracle.solver import OracleSolution, solve

__all__ = [
    "AGGREGATORS",
    "Curves",
    "Frontier",
    "OracleInputError",
    "OracleSolution",
    "Question",
    "Sample",
    "accuracy_curves",
    "frontier",
    "solve",
]
