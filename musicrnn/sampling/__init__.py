"""Sampling: the generator (one per-note path for every core) and prime sources. Never imports
Lightning, TensorBoard or matplotlib."""
