"""Cheap query features for the learn stage: scikit-learn transformers over the question text. Pure: no I/O."""

from features.text import STATISTICS, TextStatistics, query_features, text_statistics

__all__ = ["STATISTICS", "TextStatistics", "query_features", "text_statistics"]
