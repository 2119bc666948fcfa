"""Note statistics that turn "closer to real music" into numbers (after Yang & Lerch 2018).

Two levels, pure numpy:

* ``sequence_features(notes)``: per-sequence scalars (pitch-class entropy, polyphony, repetition, ...)
  plus the pooled per-note values (pitch, inter-onset interval, duration, velocity).
* ``compare(generated, real)``: for every feature, estimate the density of each set on a shared grid
  (Gaussian KDE) and report the overlap area OA = ∫ min(p, q) (1 = same distribution, 0 = disjoint)
  and KL(real || generated) in nats. Also Yang & Lerch's procedure: the density of intra-set distances
  of the real set vs. the density of inter-set (generated-to-real) distances; if the generated set
  is drawn from the same distribution the two match (inter_oa -> 1).

Undefined values never become NaN: a sequence with no notes has every scalar 0.0 and an all-zero
pitch-class histogram; with fewer than two notes, IOI-based values are 0.0 and the repeat share 0.0.
Seconds-valued features (IOI, duration) are compared on a log10(seconds + 1 ms) scale, because they
are roughly log-normal and a linear grid would put every short note in one bin.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

SCALARS = (
    "pc_entropy", "pitch_range", "used_pitches", "polyphony", "polyphony_time", "note_density",
    "repeat_4gram", "longest_run", "mean_ioi", "mean_duration", "mean_velocity",
)
POOLED = ("pitch", "ioi", "duration", "velocity")
LOG_SCALE = frozenset({"ioi", "duration", "mean_ioi", "mean_duration"})
GRID = 512  # KDE grid points
KL_EPS = 1e-6  # per-bin mass added before KL, so KL is finite (at most ~log(1/eps) = 13.8 nats)


class NoteArrays(Protocol):
    pitch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    velocity: np.ndarray


def _arrays(notes: NoteArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pitch int64, start, end, velocity float64), sorted by (start, pitch) whatever the input."""
    p = np.asarray(notes.pitch, np.int64)
    s, e = np.asarray(notes.start, np.float64), np.asarray(notes.end, np.float64)
    order = np.lexsort((p, s))
    return p[order], s[order], e[order], np.asarray(notes.velocity, np.float64)[order]


# ---- per-sequence features ----------------------------------------------------------------------
def pitch_class_histogram(notes: NoteArrays) -> np.ndarray:
    """(12,) share of notes per pitch class (C=0); all zeros for an empty sequence."""
    counts = np.bincount(np.asarray(notes.pitch, np.int64) % 12, minlength=12).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def entropy_bits(hist: np.ndarray) -> float:
    """Shannon entropy in bits of a histogram (normalised here; 0.0 for an all-zero one)."""
    h = np.asarray(hist, np.float64)
    if h.sum() <= 0:
        return 0.0
    p = h[h > 0] / h.sum()
    return float(-(p * np.log2(p)).sum())


def polyphony(notes: NoteArrays) -> float:
    """Mean number of notes sounding at each distinct onset time (a chord counts once).

    A note sounds at t when start <= t < end, so a note released exactly when the next one starts
    does not count. A melody gives 1.0, a sequence of 3-note block chords 3.0. Empty: 0.0.
    """
    _, s, e, _ = _arrays(notes)
    if len(s) == 0:
        return 0.0
    onsets = np.unique(s)
    sounding = np.searchsorted(s, onsets, "right") - np.searchsorted(np.sort(e), onsets, "right")
    return float(sounding.mean())


def polyphony_time(notes: NoteArrays) -> float:
    """Time-weighted polyphony: total note time / time during which at least one note sounds."""
    _, s, e, _ = _arrays(notes)
    if len(s) == 0:
        return 0.0
    reach = np.maximum.accumulate(e)  # latest release so far
    new = np.r_[True, s[1:] > reach[:-1]]  # note starts a fresh sounding segment
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(s) - 1]
    union = float((reach[last] - s[first]).sum())
    return float((e - s).sum() / union) if union > 0 else 0.0


def inter_onset_intervals(notes: NoteArrays) -> np.ndarray:
    """Seconds between consecutive note onsets (n-1,), >= 0; chord notes give 0 (= the model's step)."""
    return np.diff(_arrays(notes)[1])


def repeated_ngram_share(pitch: np.ndarray, n: int = 4) -> float:
    """Share of pitch n-grams (in note order) that repeat an n-gram seen earlier in the sequence."""
    p = np.asarray(pitch, np.int64)
    if len(p) < n:
        return 0.0
    grams = np.lib.stride_tricks.sliding_window_view(p, n)
    keys = (grams * (128 ** np.arange(n - 1, -1, -1))).sum(axis=1)  # one int per n-gram
    return float(1.0 - len(np.unique(keys)) / len(keys))


def longest_run(pitch: np.ndarray) -> int:
    """Length of the longest run of consecutive notes with the same pitch (0 when empty)."""
    p = np.asarray(pitch)
    if len(p) == 0:
        return 0
    breaks = np.flatnonzero(p[1:] != p[:-1]) + 1
    return int(np.diff(np.r_[0, breaks, len(p)]).max())


def sequence_features(notes: NoteArrays) -> dict[str, float | np.ndarray]:
    """All per-sequence scalars (keys of ``SCALARS``), ``pc_hist`` (12,) and ``POOLED`` arrays."""
    p, s, e, v = _arrays(notes)
    n = len(p)
    hist = pitch_class_histogram(notes)
    ioi, dur = np.diff(s), e - s
    span = float(e.max() - s.min()) if n else 0.0
    out: dict[str, float | np.ndarray] = {
        "pc_entropy": entropy_bits(hist),
        "pitch_range": float(p.max() - p.min()) if n else 0.0,
        "used_pitches": float(len(np.unique(p))),
        "polyphony": polyphony(notes),
        "polyphony_time": polyphony_time(notes),
        "note_density": n / span if span > 0 else 0.0,
        "repeat_4gram": repeated_ngram_share(p, 4),
        "longest_run": float(longest_run(p)),
        "mean_ioi": float(ioi.mean()) if len(ioi) else 0.0,
        "mean_duration": float(dur.mean()) if n else 0.0,
        "mean_velocity": float(v.mean()) if n else 0.0,
    }
    out.update(pc_hist=hist, pitch=p.astype(np.float64), ioi=ioi, duration=dur, velocity=v)
    return out


# ---- densities and their comparison -------------------------------------------------------------
def _bandwidth(x: np.ndarray, span: float) -> float:
    """Silverman's rule, floored at span/100 so a constant set still gets a smooth bump."""
    if len(x) > 1:
        q75, q25 = np.percentile(x, [75, 25])
        sigma = min(np.std(x), (q75 - q25) / 1.34) or np.std(x)
        bw = 0.9 * sigma * len(x) ** -0.2
    else:
        bw = 0.0
    return max(float(bw), span / 100)


def _kde(x: np.ndarray, grid: np.ndarray, bw: float) -> np.ndarray:
    """Binned Gaussian KDE as probability mass per grid point (sums to 1; zeros if x is empty)."""
    dx = grid[1] - grid[0]
    mass, _ = np.histogram(x, bins=len(grid), range=(grid[0] - dx / 2, grid[-1] + dx / 2))
    if mass.sum() == 0:
        return mass.astype(np.float64)
    half = min(len(grid) - 1, int(np.ceil(4 * bw / dx)))
    kern = np.exp(-0.5 * (np.arange(-half, half + 1) * dx / bw) ** 2)
    dens = np.convolve(mass, kern, mode="full")[half : half + len(grid)]
    return dens / dens.sum()


def overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(OA, KL(b || a) in nats) of the KDEs of two samples on a shared grid.

    Both empty or all values equal -> (1.0, 0.0); exactly one empty -> (0.0, ~13.8).
    """
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if len(a) == 0 and len(b) == 0:
        return 1.0, 0.0
    both = np.r_[a, b]
    lo, hi = float(both.min()), float(both.max())
    if hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):  # all equal, up to float rounding
        return (1.0, 0.0) if len(a) and len(b) else (0.0, float(np.log(1 / KL_EPS)))
    bws = [_bandwidth(x, hi - lo) for x in (a, b)]
    grid = np.linspace(lo - 4 * max(bws), hi + 4 * max(bws), GRID)
    pa, pb = _kde(a, grid, bws[0]), _kde(b, grid, bws[1])
    oa = float(np.minimum(pa, pb).sum())
    qa, qb = (pa + KL_EPS) / (1 + GRID * KL_EPS), (pb + KL_EPS) / (1 + GRID * KL_EPS)
    return min(oa, 1.0), float(max((qb * np.log(qb / qa)).sum(), 0.0))


def _pairwise(x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distances between rows: all x-y pairs, or the i<j pairs within x when y is None."""
    x2 = x.reshape(len(x), -1)
    y2 = x2 if y is None else y.reshape(len(y), -1)
    d = np.sqrt(((x2[:, None, :] - y2[None, :, :]) ** 2).sum(-1))
    return d[np.triu_indices(len(x2), 1)] if y is None else d.ravel()


def _set_features(notes_list: Sequence[NoteArrays]) -> dict[str, np.ndarray]:
    """Per feature: (n_seq,) scalars, (n_seq, 12) pc_hist, pooled arrays; seconds already log-scaled."""
    feats = [sequence_features(n) for n in notes_list]
    out = {k: np.array([f[k] for f in feats], np.float64) for k in SCALARS}
    out["pc_hist"] = np.array([f["pc_hist"] for f in feats], np.float64).reshape(len(feats), 12)
    for k in POOLED:
        out[k] = np.concatenate([f[k] for f in feats]) if feats else np.zeros(0)
    for k in LOG_SCALE:
        out[k] = np.log10(out[k] + 1e-3)
    return out


def compare(generated: Sequence[NoteArrays], real: Sequence[NoteArrays]) -> dict[str, float]:
    """Flat, JSON-ready dict of floats comparing a generated set with a real set.

    For f in SCALARS and POOLED: ``f/oa``, ``f/kl`` (feature-distribution overlap, KL(real||gen)).
    ``pc_hist/oa``, ``pc_hist/kl``: the sets' mean pitch-class histograms, sum of minima and KL.
    For f in SCALARS + pc_hist, Yang & Lerch 2018 (only when there are >= 2 real sequences):
    ``f/inter_oa``, ``f/inter_kl``: real intra-set distances vs. generated-to-real distances;
    ``f/intra_oa`` (also needs >= 2 generated): generated vs. real intra-set distances (diversity).
    Summaries: ``mean_oa`` (over ``*/oa``), ``mean_inter_oa`` (if present), ``n_generated``, ``n_real``.
    """
    if not len(generated) or not len(real):
        raise ValueError("compare needs at least one generated and one real sequence")
    g, r = _set_features(generated), _set_features(real)
    out: dict[str, float] = {}
    for k in SCALARS + POOLED:
        out[f"{k}/oa"], out[f"{k}/kl"] = overlap(g[k], r[k])
    hg, hr = g["pc_hist"].mean(0), r["pc_hist"].mean(0)
    out["pc_hist/oa"] = float(np.minimum(hg, hr).sum())
    qg, qr = (hg + KL_EPS) / (hg + KL_EPS).sum(), (hr + KL_EPS) / (hr + KL_EPS).sum()
    out["pc_hist/kl"] = float(max((qr * np.log(qr / qg)).sum(), 0.0))
    oas = [v for k, v in out.items() if k.endswith("/oa")]
    inter_oas = []
    if len(real) >= 2:
        for k in SCALARS + ("pc_hist",):
            intra_r = _pairwise(r[k])
            out[f"{k}/inter_oa"], out[f"{k}/inter_kl"] = overlap(_pairwise(g[k], r[k]), intra_r)
            inter_oas.append(out[f"{k}/inter_oa"])
            if len(generated) >= 2:
                out[f"{k}/intra_oa"] = overlap(_pairwise(g[k]), intra_r)[0]
    out["mean_oa"] = float(np.mean(oas))
    if inter_oas:
        out["mean_inter_oa"] = float(np.mean(inter_oas))
    out["n_generated"], out["n_real"] = float(len(generated)), float(len(real))
    return out


def describe(notes_list: Sequence[NoteArrays]) -> dict[str, float]:
    """Mean of each SCALARS feature over the sequences (linear units), plus n_sequences and n_notes."""
    feats = [sequence_features(n) for n in notes_list]
    out = {k: float(np.mean([f[k] for f in feats])) if feats else 0.0 for k in SCALARS}
    out["n_sequences"] = float(len(feats))
    out["n_notes"] = float(sum(len(n.pitch) for n in notes_list))
    return out


def mean_overlap(compare_result: dict) -> float:
    """The single "closer to real music" score of a ``compare`` result (1 = indistinguishable)."""
    return float(compare_result["mean_oa"])
