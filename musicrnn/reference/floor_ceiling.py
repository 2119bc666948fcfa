"""Reference rows for the report: the classical floor and the real-music ceiling.

- ``ngram_floor``: smoothed pitch n-grams (orders 1-4, ``ngram.PitchNgram``) trained on the train
  split, scored on exactly the validation targets of the networks' ``val/pitch_ce`` (the seeded
  subset of windows, the note after ``window`` notes) and on every validation note (``val_piece``).
- ``real_ceiling``: the note statistics of two disjoint sets of real validation continuations
  compared with each other (``stats.compare``), so a sample overlap can be read as a fraction of what
  real music scores against real music.
"""
from __future__ import annotations

import numpy as np
import torch

from musicrnn.data.cache import build_or_load


def _split_files(cache, split: str) -> list[int]:
    return [k for k, f in enumerate(cache.files) if f.split == split]


def validation_window_starts(cache, window: int, val_windows: int | None, seed: int = 0) -> np.ndarray:
    """Absolute note indices (into the validation files concatenated) of the windows the data module
    validates on: every window start of each file, then its seeded subset (``MaestroDataModule``)."""
    ids = _split_files(cache, "validation")
    lengths = [int(cache.offsets[k + 1] - cache.offsets[k]) for k in ids]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    starts = np.concatenate([np.arange(offsets[i], offsets[i + 1] - window, 1) for i in range(len(ids))])
    if val_windows and val_windows < len(starts):
        g = torch.Generator().manual_seed(seed)
        starts = starts[torch.randperm(len(starts), generator=g)[:val_windows].sort().values.numpy()]
    return starts


def ngram_floor(root, window: int = 50, val_windows: int | None = 6400, orders=(1, 2, 3, 4),
                seed: int = 0) -> list[dict]:
    """One row per order: validation pitch CE (nats) on the windows' targets and on every note."""
    from musicrnn.reference.ngram import PitchNgram, piece_targets, window_targets

    cache = build_or_load(root, progress=False, verbose=False)
    train = [cache.notes(k).pitch for k in _split_files(cache, "train")]
    val = [cache.notes(k).pitch for k in _split_files(cache, "validation")]
    val_pitch = np.concatenate(val)
    starts = validation_window_starts(cache, window, val_windows, seed)
    rows = []
    for n in orders:
        model = PitchNgram(n).fit(train)
        ctx_w, tgt_w = window_targets(val_pitch, starts, window, max(n - 1, 1))
        ctx_p, tgt_p = piece_targets(val, max(n - 1, 1))
        rows.append({"name": f"pitch {n}-gram", "order": n,
                     "val": {"pitch_ce": model.cross_entropy(ctx_w, tgt_w)},
                     "val_piece": {"pitch_ce": model.cross_entropy(ctx_p, tgt_p)},
                     "discounts": [round(d, 3) for d in getattr(model, "discount", [])],
                     "train_notes": int(sum(len(f) for f in train)), "val_windows": int(len(starts))})
    return rows


def real_ceiling(root, num_notes: int = 200, count: int = 32, seed: int = 0, split: str = "validation") -> dict:
    """``stats.compare`` of two disjoint sets of ``count`` real continuations of ``num_notes`` notes
    (different files) of the split: the overlap real music reaches against real music."""
    from musicrnn.stats import compare

    cache = build_or_load(root, progress=False, verbose=False)
    ids = [k for k in _split_files(cache, split) if cache.offsets[k + 1] - cache.offsets[k] >= num_notes + 1]
    rng = np.random.default_rng(seed)
    ids = rng.permutation(ids)
    if len(ids) < 2 * count:
        count = len(ids) // 2
    if count == 0:  # a tiny folder (e.g. the bundled sample's test split): no ceiling to measure
        return {"count": 0, "num_notes": num_notes, "split": split, "compare": {}, "mean_oa": None}
    sets = []
    for part in (ids[:count], ids[count: 2 * count]):
        excerpts = []
        for k in part:
            notes = cache.notes(int(k))
            i = int(rng.integers(0, len(notes) - num_notes + 1))
            excerpts.append(notes[i: i + num_notes])
        sets.append(excerpts)
    result = compare(sets[0], sets[1])
    return {"count": count, "num_notes": num_notes, "split": split, "compare": result,
            "mean_oa": float(result["mean_oa"])}
