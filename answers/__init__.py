"""Answers: final answers out of generated text (`extract`), the vote (`votes`), and whether an answer equals
a gold one (`equivalence`, which imports sympy and so is not imported here).

Pure Python: used by the oracle's vote groups, the replays, the gateway and `collect`.
"""

from answers.extract import canonical, extract_answer, last_boxed
from answers.votes import Tally, Verdict, aggregate, tally

__all__ = ["Tally", "Verdict", "aggregate", "canonical", "extract_answer", "last_boxed", "tally"]
