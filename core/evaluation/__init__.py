"""Evaluation: the feature classifier and reference data (features.py), FD/KID and the metric contract
(metrics.py), scoring a model, run directory or exported file (scoring.py)."""
