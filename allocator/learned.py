"""Policies that learn from question text: imitation of the oracle's labels, and plug-in curve prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import NDArray
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from allocator.base import Policy, lam_for_budget, oracle_labels
from allocator.data import Outcomes
from features.text import TextStatistics, hashed_tfidf, query_features

Classifier = Literal["logistic", "boosting"]
_FLOOR = 1e-6  # probabilities are floored before the log so an unseen action is unlikely, not impossible


class Imitation(Policy):
    """The paper's method: a classifier learns the oracle's action at the budget from the question text.

    Its spend is then calibrated: out-of-fold probabilities P(a | x) on the training questions set the price
    μ in argmax_a log P(a | x) - μ c(a) (negative when the classifier alone under-spends) so that the mean
    cost is the oracle's own on those questions, which is at most the budget.
    """

    name = "imitation"

    def __init__(self, classifier: Classifier = "logistic", folds: int = 3, seed: int = 0) -> None:
        self.classifier = classifier
        self.folds = folds
        self.seed = seed

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        labels = oracle_labels(data, budget)
        out_of_fold = np.zeros((data.n, len(data.ks)))
        for train, test in held_out_splits(data.n, self.folds, self.seed):
            fitted = self._fit_classifier([data.texts[i] for i in train], labels[train])
            out_of_fold[test] = self._probabilities(fitted, [data.texts[i] for i in test])
        spend = float(self.costs_[labels].mean())
        self.lam_ = lam_for_budget(np.log(out_of_fold + _FLOOR), self.costs_, spend, subsidise=True)
        self.model_ = self._fit_classifier(data.texts, labels)
        self.train_labels_ = labels
        return self

    def choose(self, texts: Sequence[str]) -> NDArray[np.intp]:
        scores = np.log(self._probabilities(self.model_, texts) + _FLOOR)
        return np.asarray(np.argmax(scores - self.lam_ * self.costs_, axis=1), dtype=np.intp)

    def description(self) -> dict[str, Any]:
        return super().description() | {"classifier": self.classifier, "lambda": self.lam_}

    def _fit_classifier(self, texts: Sequence[str], labels: NDArray[np.intp]) -> Pipeline | int:
        """A fitted classifier, or the one label when there is nothing to tell apart."""
        if np.unique(labels).size == 1:
            return int(labels[0])
        if self.classifier == "logistic":
            model = make_pipeline(dense_features(self.seed), LogisticRegression(C=1.0, max_iter=1000))
        else:
            trees = HistGradientBoostingClassifier(
                max_iter=80, learning_rate=0.08, max_leaf_nodes=15, random_state=self.seed
            )
            model = make_pipeline(dense_features(self.seed), trees)
        return model.fit(list(texts), labels)

    def _probabilities(self, fitted: Pipeline | int, texts: Sequence[str]) -> NDArray[np.float64]:
        """P(action | text) over every action, zero for actions the classifier never saw."""
        full = np.zeros((len(texts), len(self.ks_)))
        if isinstance(fitted, int):
            full[:, fitted] = 1.0
        else:
            full[:, np.asarray(fitted.classes_, dtype=np.intp)] = fitted.predict_proba(list(texts))
        return full


def held_out_splits(n: int, folds: int, seed: int) -> list[tuple[NDArray[np.intp], NDArray[np.intp]]]:
    """K-fold splits for out-of-fold predictions; with a single question there is nothing to hold out."""
    if n < 2:
        return [(np.arange(n), np.arange(n))]
    return list(KFold(min(folds, n), shuffle=True, random_state=seed).split(np.arange(n)))


class PlugIn(Policy):
    """Predicts each query's accuracy curve p̂(a) from its text, then takes argmax_a p̂(a) - λ c(a).

    λ is calibrated on out-of-fold predictions for a grid of budgets, so the budget can change at serve time
    without retraining (`with_budget`).
    """

    name = "plugin"
    movable = True

    def __init__(self, alpha: float = 3.0, folds: int = 3, seed: int = 0) -> None:
        self.alpha = alpha
        self.folds = folds
        self.seed = seed

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        predicted = np.zeros_like(data.acc)
        for train, test in held_out_splits(data.n, self.folds, self.seed):
            model = self._regression().fit([data.texts[i] for i in train], data.acc[train])
            predicted[test] = self._curves(model, [data.texts[i] for i in test])
        cost = self.costs_
        grid = np.unique(np.concatenate([np.geomspace(cost.min(), cost.max(), 33), [budget]]))
        self.lam_table_ = {float(b): lam_for_budget(predicted, cost, float(b)) for b in grid}
        self.model_ = self._regression().fit(data.texts, data.acc)
        self.lam_ = self.lam_table_[float(budget)]
        return self

    def with_budget(self, budget: float) -> Self:
        """The same fitted model at another budget: λ interpolated (in log budget) from the calibrated table."""
        self.lam_ = self.lam(budget)
        self.budget_ = float(budget)
        return self

    def lam(self, budget: float | None = None) -> float:
        if budget is None:
            return self.lam_
        budgets = np.array(sorted(self.lam_table_))
        lams = np.array([self.lam_table_[b] for b in budgets])
        return float(np.interp(np.log(budget), np.log(budgets), lams))

    def predict_curves(self, texts: Sequence[str]) -> NDArray[np.float64]:
        return self._curves(self.model_, texts)

    def _regression(self) -> Pipeline:
        return make_pipeline(query_features(), Ridge(alpha=self.alpha))

    def _curves(self, model: Pipeline, texts: Sequence[str]) -> NDArray[np.float64]:
        predicted = np.asarray(model.predict(list(texts)), dtype=np.float64).reshape(len(texts), -1)
        return np.clip(predicted, 0.0, 1.0)

    def choose(self, texts: Sequence[str]) -> NDArray[np.intp]:
        return self.choose_at(texts, None)

    def choose_at(self, texts: Sequence[str], budget: float | None) -> NDArray[np.intp]:
        scores = self.predict_curves(texts) - self.lam(budget) * self.costs_
        return np.asarray(np.argmax(scores, axis=1), dtype=np.intp)

    def description(self) -> dict[str, Any]:
        table = {f"{b:g}": lam for b, lam in self.lam_table_.items()}
        return super().description() | {"lambda": self.lam_, "lambda_table": table}


def dense_features(seed: int = 0) -> FeatureUnion:
    """A few dense columns for tree models: scaled statistics and SVD projections of the TF-IDF n-grams."""
    return FeatureUnion(
        [
            ("statistics", make_pipeline(TextStatistics(), StandardScaler())),
            ("words", make_pipeline(hashed_tfidf("word", (1, 2), 2**14), TruncatedSVD(24, random_state=seed))),
            ("chars", make_pipeline(hashed_tfidf("char_wb", (3, 4), 2**14), TruncatedSVD(24, random_state=seed))),
        ]
    )
