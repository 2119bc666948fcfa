"""Evaluation: what a trained network is measured by, and what it is measured against.

- ``windows``: the one choice of evaluation windows and primes, taken from the data module
  (``MaestroDataModule``: its splits, ``stride``, seeded ``val_windows`` subset), and the mapping of the
  data's composers onto the network's.
- ``metrics``: next-note metrics on a split's windows; pitch cross-entropy over whole pieces with
  carried state against the same positions with a short context.
- ``stats``: note statistics of sets of sequences and their overlap (after Yang & Lerch 2018).
- ``structure``: structure of a continuation against its prime (motif reuse, key fit, chords, register).
- ``ngram``, ``floor_ceiling``: the pitch n-gram floor and the real-vs-real ceiling.
- ``samples``: samples of a network (and of the reference continuations) on real primes, scored.
- ``cache_tuning``: the fixed memory of the piece (a pointer cache with no weights) tuned on
  validation pieces, and written into a checkpoint's settings.
- ``run``: ``evaluate``, what ``python -m musicrnn.evaluate`` and ``experiments`` call.
"""
