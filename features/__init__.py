"""Cheap query features for the learn stage (scikit-learn transformers). Built in the learn-stage issue."""
