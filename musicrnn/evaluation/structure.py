"""Structure of a continuation against its prime: what a listener hears as "it keeps the key, brings
motifs back, plays chords like a pianist", measured the same way for a model's samples and for what the
pianist really played next (so copying the prime or a trigram's babble cannot pass for structure).

Per (prime, continuation), pure numpy, notes in onset order:

- ``motif_reuse``: share of the continuation's 4-note pitch patterns already heard earlier in it.
- ``longest_repeat``: length in notes of the longest pitch pattern that occurs twice without overlap.
- ``key_fit``: Krumhansl–Schmuckler: the prime's key is the major/minor Krumhansl–Kessler profile (24
  rotations) best correlated with the prime's pitch-class histogram (note counts); ``key_fit`` is the
  Pearson r of the continuation's histogram with that key's profile (1 = in the prime's key).
- ``pc_drift``: total variation distance between the prime's and the continuation's pitch-class
  histograms (0 = same pitch classes, 1 = none in common).
- ``chord_share``: share of onsets less than ``CHORD_GAP`` (20 ms) after the previous onset;
  ``chord_size``: mean notes per chord (onsets grouped by that gap; a single note is a chord of 1).
- ``velocity``: mean velocity; ``register``: mean pitch; ``notes_per_second``: onsets per second.
- ``register_drift`` (for a long continuation, e.g. 1,000 notes): mean pitch of its last
  ``DRIFT_TAIL`` notes minus the prime's mean pitch, in semitones.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musicrnn.evaluation.stats import (
    NoteArrays,
    pitch_class_histogram,
    repeated_ngram_share,
)

CHORD_GAP = 0.020  # seconds: onsets closer than this sound as one chord
DRIFT_TAIL = 100  # notes at the end of a long continuation whose mean pitch is its register
MOTIF = 4  # notes per motif
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
KEYS = np.array([np.roll(profile, tonic) for profile in (MAJOR, MINOR) for tonic in range(12)])  # (24, 12)
NAMES = [f"{n} {mode}" for mode in ("major", "minor")
         for n in ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")]
FIELDS = ("motif_reuse", "longest_repeat", "key_fit", "pc_drift", "chord_share", "chord_size", "velocity",
          "register", "notes_per_second")


def _ordered(notes: NoteArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pitch, start, velocity) sorted by onset, then pitch."""
    p, s = np.asarray(notes.pitch, np.int64), np.asarray(notes.start, np.float64)
    order = np.lexsort((p, s))
    return p[order], s[order], np.asarray(notes.velocity, np.float64)[order]


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of ``a`` (12,) with each row of ``b`` (k, 12); 0 where either is constant."""
    a, b = a - a.mean(), b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum() * (b * b).sum(axis=-1))
    return np.where(den > 0, (b @ a) / np.where(den > 0, den, 1.0), 0.0)


def best_key(notes: NoteArrays) -> int:
    """Index into ``NAMES`` of the Krumhansl–Schmuckler key of ``notes`` (C major for no notes)."""
    return int(np.argmax(_correlation(pitch_class_histogram(notes), KEYS)))


def key_fit(prime: NoteArrays, continuation: NoteArrays) -> float:
    """Pearson r of the continuation's pitch-class histogram with the profile of the prime's key."""
    return float(_correlation(pitch_class_histogram(continuation), KEYS[best_key(prime)][None])[0])


def longest_repeat(pitch: np.ndarray) -> int:
    """Longest run of consecutive pitches that occurs twice in ``pitch`` without overlapping itself."""
    p = np.asarray(pitch, np.int64)
    best = 0
    for shift in range(1, len(p)):
        same = np.r_[False, p[shift:] == p[:-shift], False]
        edges = np.flatnonzero(np.diff(same.astype(np.int8)))
        if len(edges):
            best = max(best, min(int((edges[1::2] - edges[::2]).max()), shift))
    return best


def chords(start: np.ndarray) -> tuple[float, float]:
    """(share of onsets < CHORD_GAP after the previous one, mean notes per chord); (0, 0) when empty."""
    if len(start) == 0:
        return 0.0, 0.0
    close = np.diff(start) < CHORD_GAP
    return float(close.mean()) if len(close) else 0.0, float(len(start) / (1 + (~close).sum()))


def structure(prime: NoteArrays, continuation: NoteArrays) -> dict[str, float]:
    """Every ``FIELDS`` value of one continuation of ``prime`` (see the module doc)."""
    p, s, v = _ordered(continuation)
    share, size = chords(s)
    span = float(s[-1] - s[0]) if len(s) > 1 else 0.0
    hp, hc = pitch_class_histogram(prime), pitch_class_histogram(continuation)
    return {"motif_reuse": repeated_ngram_share(p, MOTIF), "longest_repeat": float(longest_repeat(p)),
            "key_fit": key_fit(prime, continuation), "pc_drift": float(0.5 * np.abs(hp - hc).sum()),
            "chord_share": share, "chord_size": size, "velocity": float(v.mean()) if len(v) else 0.0,
            "register": float(p.mean()) if len(p) else 0.0,
            "notes_per_second": (len(s) - 1) / span if span > 0 else 0.0}


def register_drift(prime: NoteArrays, long_continuation: NoteArrays) -> float:
    """Mean pitch of the continuation's last ``DRIFT_TAIL`` notes minus the prime's mean pitch."""
    tail = _ordered(long_continuation)[0][-DRIFT_TAIL:]
    return float(tail.mean() - np.asarray(prime.pitch, np.float64).mean())


def summarize(primes: Sequence[NoteArrays], continuations: Sequence[NoteArrays],
              long_continuations: Sequence[NoteArrays] | None = None) -> dict[str, float]:
    """Mean of each ``structure`` field over the pairs, plus ``register_drift`` (and its mean absolute
    value ``register_drift_abs``) when long continuations are given, and ``n``."""
    rows = [structure(a, b) for a, b in zip(primes, continuations)]
    out = {k: float(np.mean([r[k] for r in rows])) for k in FIELDS} if rows else dict.fromkeys(FIELDS, 0.0)
    if long_continuations:
        drift = [register_drift(a, b) for a, b in zip(primes, long_continuations)]
        out["register_drift"] = float(np.mean(drift))
        out["register_drift_abs"] = float(np.mean(np.abs(drift)))
        out["long_notes"] = float(min(len(n.pitch) for n in long_continuations))
    out["n"] = float(len(rows))
    return out
