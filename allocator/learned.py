"""Policies that learn from question text: imitation of the oracle's labels, and plug-in curve prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from allocator.base import Policy, oracle_labels, price_for_budget, shift_for_budget
from allocator.data import Outcomes
from features.text import TextStatistics, hashed_tfidf, query_features

Classifier = Literal["logistic", "boosting"]
_FLOOR = 1e-6  # probabilities are floored before the log so an unseen action is unlikely, not impossible


class Imitation(Policy):
    """The paper's method: a classifier learns the oracle's action at the budget from the question text.

    Its budget is then met by calibration: out-of-fold probabilities P(a | x) on the training questions set
    the price μ in argmax_a log P(a | x) - μ c(a) so that the mean cost is the budget.
    """

    name = "imitation"

    def __init__(self, classifier: Classifier = "logistic", folds: int = 3, seed: int = 0) -> None:
        self.classifier = classifier
        self.folds = folds
        self.seed = seed

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        labels = oracle_labels(data, budget)
        model = self._model()
        folds = KFold(min(self.folds, data.n), shuffle=True, random_state=self.seed)
        if len(np.unique(labels)) == 1:
            out_of_fold = np.zeros((data.n, len(data.ks)))
            out_of_fold[:, labels[0]] = 1.0
        else:
            probabilities = cross_val_predict(model, data.texts, labels, cv=folds, method="predict_proba")
            out_of_fold = self._by_action(probabilities, np.unique(labels))
        self.price_ = shift_for_budget(np.log(out_of_fold + _FLOOR), data.cost, budget)
        self.model_ = clone(model).fit(data.texts, labels) if len(np.unique(labels)) > 1 else None
        self.only_label_ = int(labels[0])
        self.train_labels_ = labels
        return self

    def choose(self, texts: Sequence[str]) -> NDArray[np.intp]:
        if self.model_ is None:
            return np.full(len(texts), self.only_label_, dtype=np.intp)
        probabilities = self._by_action(self.model_.predict_proba(list(texts)), self.model_.classes_)
        cost = np.array(self.ks_, dtype=np.float64)
        return np.asarray(np.argmax(np.log(probabilities + _FLOOR) - self.price_ * cost, axis=1), dtype=np.intp)

    def description(self) -> dict[str, Any]:
        return super().description() | {"classifier": self.classifier, "price": self.price_}

    def _model(self) -> Pipeline:
        if self.classifier == "logistic":
            return make_pipeline(dense_features(self.seed), LogisticRegression(C=1.0, max_iter=1000))
        return make_pipeline(
            dense_features(self.seed),
            HistGradientBoostingClassifier(max_iter=80, learning_rate=0.08, max_leaf_nodes=15, random_state=self.seed),
        )

    def _by_action(self, probabilities: NDArray[np.float64], classes: NDArray[np.int_]) -> NDArray[np.float64]:
        full = np.zeros((probabilities.shape[0], len(self.ks_)))
        full[:, np.asarray(classes, dtype=np.intp)] = probabilities
        return full


class PlugIn(Policy):
    """Predicts each query's accuracy curve p̂(a) from its text, then takes argmax_a p̂(a) - λ c(a).

    λ is calibrated on out-of-fold predictions for a grid of budgets, so the budget can change at serve time
    without retraining (`with_budget`).
    """

    name = "plugin"

    def __init__(self, alpha: float = 3.0, folds: int = 3, seed: int = 0) -> None:
        self.alpha = alpha
        self.folds = folds
        self.seed = seed

    def fit(self, data: Outcomes, budget: float) -> Self:
        self._remember(data, budget)
        model = make_pipeline(query_features(), Ridge(alpha=self.alpha))
        folds = KFold(min(self.folds, data.n), shuffle=True, random_state=self.seed)
        predicted = np.clip(cross_val_predict(model, data.texts, data.acc, cv=folds), 0.0, 1.0)
        cost = data.cost
        grid = np.unique(np.concatenate([np.geomspace(cost.min(), cost.max(), 33), [budget]]))
        self.price_table_ = {float(b): price_for_budget(predicted, cost, float(b)) for b in grid}
        self.model_ = model.fit(data.texts, data.acc)
        self.price_ = self.price_table_[float(budget)]
        return self

    def with_budget(self, budget: float) -> Self:
        """The same fitted model at another budget: λ interpolated (in log budget) from the calibrated table."""
        budgets = np.array(sorted(self.price_table_))
        prices = np.array([self.price_table_[b] for b in budgets])
        self.price_ = float(np.interp(np.log(budget), np.log(budgets), prices))
        self.budget_ = float(budget)
        return self

    def predict_curves(self, texts: Sequence[str]) -> NDArray[np.float64]:
        return np.clip(np.asarray(self.model_.predict(list(texts)), dtype=np.float64), 0.0, 1.0)

    def choose(self, texts: Sequence[str]) -> NDArray[np.intp]:
        cost = np.array(self.ks_, dtype=np.float64)
        return np.asarray(np.argmax(self.predict_curves(texts) - self.price_ * cost, axis=1), dtype=np.intp)

    def description(self) -> dict[str, Any]:
        table = {f"{b:g}": lam for b, lam in self.price_table_.items()}
        return super().description() | {"lambda": self.price_, "lambda_table": table}


def dense_features(seed: int = 0) -> FeatureUnion:
    """A few dense columns for tree models: scaled statistics and SVD projections of the TF-IDF n-grams."""
    return FeatureUnion(
        [
            ("statistics", make_pipeline(TextStatistics(), StandardScaler())),
            ("words", make_pipeline(hashed_tfidf("word", (1, 2), 2**14), TruncatedSVD(24, random_state=seed))),
            ("chars", make_pipeline(hashed_tfidf("char_wb", (3, 4), 2**14), TruncatedSVD(24, random_state=seed))),
        ]
    )
