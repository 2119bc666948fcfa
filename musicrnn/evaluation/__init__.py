"""Evaluation: metrics of a trained network on held-out data, and the tuning of what it has no weights for."""
