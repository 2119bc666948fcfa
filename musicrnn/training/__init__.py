"""Training-only Lightning pieces: callbacks (atomic checkpoints, exact resume, NaN guard) and
the TensorBoard sample logger."""
