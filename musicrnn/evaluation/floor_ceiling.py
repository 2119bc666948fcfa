"""Reference rows for the report: the classical floor and the real-music ceiling, on the data
module's windows (``evaluation.windows``: the same splits, ``stride`` and seeded subset as training).

- ``ngram_floor``: smoothed pitch n-grams (orders 1-4, ``ngram.PitchNgram``) trained on the train
  split's files, scored on exactly the validation targets of the networks' ``val/pitch_ce`` (the note
  after each of the data module's validation windows of ``window`` notes) and on every validation note.
- ``real_ceiling``: the note statistics (``stats.compare``) of two disjoint sets of real excerpts of a
  split, for several seeds: how close real music comes to real music, with its spread, so a sample's
  overlap can be read as a fraction of it.
"""
from __future__ import annotations

import itertools

import numpy as np

from musicrnn.evaluation.ngram import PitchNgram, piece_targets, window_targets
from musicrnn.evaluation.stats import compare
from musicrnn.evaluation.windows import (
    RealWindows,
    data_module,
    split_files,
    split_pitches,
    window_starts,
)


def file_pitches(root: str | None, split: str, *, window: int = 50, sustain: bool = False) -> list[np.ndarray]:
    """The pitches of each file of the split (the data module's files)."""
    return _files(data_module(root, window, split=split, batch_size=1, sustain=sustain, pieces=True), split)


def _files(dm, split: str) -> list[np.ndarray]:
    feats, offsets, _ = split_files(dm, split)
    pitch = feats[:, 0].numpy().astype(np.int64)
    return [pitch[a:b] for a, b in itertools.pairwise(offsets)]


def ngram_floor(root, window: int = 50, val_windows: int | None = 6400, orders=(1, 2, 3, 4), seed: int = 0,
                stride: int = 1) -> list[dict]:
    """One row per order: validation pitch CE (nats) on the windows' targets and on every note."""
    dm = data_module(root, window, split="validation", max_windows=val_windows, batch_size=1, stride=stride,
                     seed=seed, pieces=True)
    train, val = _files(dm, "train"), _files(dm, "validation")
    starts = window_starts(dm, "validation")
    val_pitch = split_pitches(dm, "validation")
    rows = []
    for n in orders:
        model = PitchNgram(n).fit(train)
        ctx_w, tgt_w = window_targets(val_pitch, starts, window, max(n - 1, 1))
        ctx_p, tgt_p = piece_targets(val, max(n - 1, 1))
        rows.append({"name": f"pitch {n}-gram", "order": n,
                     "val": {"pitch_ce": model.cross_entropy(ctx_w, tgt_w)},
                     "val_piece": {"pitch_ce": model.cross_entropy(ctx_p, tgt_p)},
                     "discounts": [round(d, 3) for d in getattr(model, "discount", [])],
                     "train_notes": int(sum(len(f) for f in train)), "val_windows": len(starts)})
    return rows


def real_ceiling(root, num_notes: int = 200, count: int = 32, seeds: int = 10, split: str = "test",
                 sustain: bool = False) -> dict:
    """``stats.compare`` of two disjoint sets of ``count`` real excerpts of ``num_notes`` notes, for
    seeds 0..seeds-1: ``mean_oa`` (their mean), ``min_oa``, ``max_oa``, ``std_oa`` and ``values``.

    A split too small for two sets gives ``count`` 0 and ``mean_oa`` None (e.g. the bundled sample).
    """
    windows = RealWindows(root, split, num_notes, sustain=sustain)
    values = []
    for seed in range(seeds):
        drawn = [notes for notes, _ in windows.draw(2 * count, seed)]
        half = len(drawn) // 2
        if half < 2:
            break
        values.append(float(compare(drawn[:half], drawn[half: 2 * half])["mean_oa"]))
    out = {"count": count if values else 0, "num_notes": num_notes, "split": split, "seeds": len(values),
           "values": values}
    if not values:
        return {**out, "mean_oa": None, "min_oa": None, "max_oa": None, "std_oa": None}
    return {**out, "mean_oa": float(np.mean(values)), "min_oa": min(values), "max_oa": max(values),
            "std_oa": float(np.std(values))}
