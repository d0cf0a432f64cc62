"""Cheap features of a question's text, as scikit-learn transformers.

Nothing here needs a model download: counts, hashed n-grams and TF-IDF weights learnt from the training questions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)*(?:/\d+)?")
_OPERATOR = re.compile(r"[+\-*/=^%<>×÷]")
_LATEX = re.compile(r"\\[A-Za-z]+")
_SENTENCE_END = re.compile(r"[.?!](?:\s|$)")
_WORD = re.compile(r"[A-Za-z]+")
_QUESTION_WORDS = frozenset(
    ("how", "what", "which", "why", "when", "where", "who", "find", "compute", "calculate", "evaluate", "determine")
) | {"solve", "simplify", "prove"}

STATISTICS = (
    "log_chars",
    "log_words",
    "numbers",
    "distinct_numbers",
    "log_largest_number",
    "decimals_and_fractions",
    "operators",
    "latex_commands",
    "dollar_signs",
    "sentences",
    "question_words",
    "table_rows",
    "lines",
    "digit_share",
)


class TextStatistics(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Counts that track how much work a question asks for: length, numbers, operators, LaTeX, sentences.

    Stateless: `fit` only records the output names, so it may be applied to any text.
    """

    def fit(self, texts: Iterable[str], y: object = None) -> TextStatistics:
        _as_texts(texts)
        self.n_features_out_ = len(STATISTICS)
        return self

    def transform(self, texts: Iterable[str]) -> NDArray[np.float64]:
        return np.array([text_statistics(text) for text in _as_texts(texts)], dtype=np.float64).reshape(
            -1, len(STATISTICS)
        )

    def get_feature_names_out(self, input_features: object = None) -> NDArray[np.str_]:
        return np.array(STATISTICS)


def text_statistics(text: str) -> list[float]:
    """The STATISTICS of one text, in order (counts on a log scale where they span orders of magnitude)."""
    numbers = _NUMBER.findall(text)
    values = [_magnitude(number) for number in numbers]
    words = _WORD.findall(text)
    lowered = [word.lower() for word in words]
    return [
        np.log1p(len(text)),
        np.log1p(len(words)),
        len(numbers),
        len(set(numbers)),
        np.log1p(min(max(values, default=0.0), 1e300)),
        sum(("." in n or "/" in n) for n in numbers),
        len(_OPERATOR.findall(text)),
        len(_LATEX.findall(text)),
        text.count("$"),
        len(_SENTENCE_END.findall(text)),
        sum(word in _QUESTION_WORDS for word in lowered),
        sum(1 for line in text.splitlines() if line.count("|") >= 2),
        text.count("\n") + 1,
        sum(ch.isdigit() for ch in text) / max(len(text), 1),
    ]


def query_features(n_features: int = 2**16) -> FeatureUnion:
    """The default feature set: scaled text statistics, plus TF-IDF over hashed word 1-2-grams and char 3-4-grams.

    Hashing keeps the vocabulary out of the model file and makes unseen words cost nothing.
    """
    return FeatureUnion(
        [
            ("statistics", make_pipeline(TextStatistics(), StandardScaler())),
            ("words", hashed_tfidf(analyzer="word", ngram_range=(1, 2), n_features=n_features)),
            ("chars", hashed_tfidf(analyzer="char_wb", ngram_range=(3, 4), n_features=n_features)),
        ]
    )


def hashed_tfidf(analyzer: str, ngram_range: tuple[int, int], n_features: int) -> Pipeline:
    hashing = HashingVectorizer(
        analyzer=analyzer, ngram_range=ngram_range, n_features=n_features, alternate_sign=False, norm=None
    )
    return make_pipeline(hashing, TfidfTransformer(sublinear_tf=True))


def _as_texts(texts: Iterable[str]) -> Sequence[str]:
    if isinstance(texts, str):
        raise ValueError("expected a sequence of texts, got a single string")
    out = list(texts)
    if not all(isinstance(text, str) for text in out):
        raise ValueError("every item must be a string")
    return out


def _magnitude(number: str) -> float:
    cleaned = number.replace(",", "")
    try:
        if "/" in cleaned:
            top, bottom = cleaned.split("/", 1)
            return abs(float(top) / float(bottom)) if float(bottom) else 0.0
        return abs(float(cleaned))
    except ValueError:
        return 0.0
