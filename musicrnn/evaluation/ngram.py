"""The classical floor: a smoothed pitch n-gram, scored on the same targets as the networks.

``PitchNgram(order).fit(sequences)`` counts pitch n-grams of the training files (never across a file
boundary); ``log_prob(contexts, targets)`` is interpolated absolute discounting (Ney, Essen & Kneser
1994): at each order k

    P_k(w | h) = max(c(h, w) - D_k, 0) / c(h) + D_k * N1+(h .) / c(h) * P_{k-1}(w | h')

with h' the context shortened by its oldest pitch, D_k = n1 / (n1 + 2 n2) from the counts of counts,
P_k = P_{k-1} for an unseen context, and an add-one unigram at the bottom (every pitch has mass).
Pure numpy: contexts are packed into int64 keys and looked up with ``searchsorted``.
"""
from __future__ import annotations

import numpy as np

VOCAB = 128
BASE = VOCAB + 1  # a context digit: 0..127 pitch, 128 = before the file's first note


class _Table:
    """Sorted unique int64 keys with their counts: ``get(keys) -> counts`` (0 where absent)."""

    def __init__(self, keys: np.ndarray):
        self.keys, self.counts = np.unique(keys, return_counts=True)

    def get(self, keys: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.keys, keys).clip(0, max(len(self.keys) - 1, 0))
        hit = (self.keys[i] == keys) if len(self.keys) else np.zeros(len(keys), bool)
        return np.where(hit, self.counts[i] if len(self.keys) else 0, 0)


def context_codes(pitches: np.ndarray, k: int) -> np.ndarray:
    """For each position t of one file, the code of its k previous pitches (BOS-padded)."""
    padded = np.concatenate([np.full(k, VOCAB, np.int64), pitches.astype(np.int64)])
    code = np.zeros(len(pitches), np.int64)
    for j in range(k):  # oldest first
        code = code * BASE + padded[j: j + len(pitches)]
    return code


class PitchNgram:
    """Interpolated absolute-discounting pitch n-gram of ``order`` (1 = unigram)."""

    def __init__(self, order: int = 3):
        if not 1 <= order <= 6:
            raise ValueError(f"order must be 1..6, got {order}")
        self.order = order

    def fit(self, files: list[np.ndarray]) -> PitchNgram:
        pitches = np.concatenate(files).astype(np.int64)
        self.unigram = (np.bincount(pitches, minlength=VOCAB) + 1.0) / (len(pitches) + VOCAB)
        self.joint, self.ctx, self.types, self.discount = [], [], [], []
        for k in range(1, self.order):  # context length k -> order k + 1
            codes = np.concatenate([context_codes(f, k) for f in files])
            joint = codes * VOCAB + pitches
            jt = _Table(joint)
            n1, n2 = np.sum(jt.counts == 1), np.sum(jt.counts == 2)
            self.discount.append(float(n1 / (n1 + 2 * n2)) if n1 + n2 else 0.5)
            self.joint.append(jt)
            self.ctx.append(_Table(codes))
            self.types.append(_Table(jt.keys // VOCAB))  # N1+(h .): distinct followers of h
        return self

    def prob(self, files_context: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """P(target | previous pitches); ``files_context`` (n, order - 1) oldest first (BOS = 128)."""
        targets = targets.astype(np.int64)
        p = self.unigram[targets]
        for k in range(1, self.order):
            ctx = files_context[:, files_context.shape[1] - k:]
            code = np.zeros(len(targets), np.int64)
            for j in range(k):
                code = code * BASE + ctx[:, j].astype(np.int64)
            c_hw = self.joint[k - 1].get(code * VOCAB + targets).astype(np.float64)
            c_h = self.ctx[k - 1].get(code).astype(np.float64)
            n_h = self.types[k - 1].get(code).astype(np.float64)
            d = self.discount[k - 1]
            seen = c_h > 0
            safe = np.where(seen, c_h, 1.0)
            p = np.where(seen, np.maximum(c_hw - d, 0) / safe + d * n_h / safe * p, p)
        return p

    def distribution(self, contexts: np.ndarray) -> np.ndarray:
        """(n, 128) P(pitch | context) for each row of ``contexts`` (n, order - 1), oldest first."""
        n = len(contexts)
        rows = np.repeat(np.asarray(contexts, np.int64).reshape(n, -1), VOCAB, axis=0)
        p = self.prob(rows, np.tile(np.arange(VOCAB), n)).reshape(n, VOCAB)
        return p / p.sum(axis=1, keepdims=True)

    def sample(self, prime_pitches: np.ndarray, num_notes: int, rng: np.random.Generator) -> np.ndarray:
        """(n, num_notes) pitches continuing each row of ``prime_pitches`` (n, >= order - 1), drawn one
        note at a time from ``distribution`` (all rows at once)."""
        k = self.order - 1
        seq = np.asarray(prime_pitches, np.int64)
        out = np.zeros((len(seq), num_notes), np.int64)
        for t in range(num_notes):
            ctx = np.concatenate([seq, out[:, :t]], axis=1)[:, seq.shape[1] + t - k:]
            cum = self.distribution(ctx).cumsum(axis=1)
            u = rng.random(len(seq))[:, None] * cum[:, -1:]
            out[:, t] = np.minimum((cum < u).sum(axis=1), VOCAB - 1)
        return out

    def cross_entropy(self, contexts: np.ndarray, targets: np.ndarray) -> float:
        """Mean -ln P(target | context) in nats."""
        return float(-np.log(self.prob(contexts, targets)).mean())


def window_targets(pitch: np.ndarray, starts: np.ndarray, window: int,
                   context: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets of windowed validation (the note after ``window`` notes starting at each of ``starts``)
    and their ``context`` previous pitches, from concatenated files (windows never cross files)."""
    t = starts + window  # absolute index of each target
    idx = t[:, None] - np.arange(context, 0, -1)[None, :]  # (n, context), oldest first
    return pitch[idx].astype(np.int64), pitch[t].astype(np.int64)


def piece_targets(files: list[np.ndarray], context: int) -> tuple[np.ndarray, np.ndarray]:
    """Every note of every file after its first, with ``context`` previous pitches (BOS-padded)."""
    ctx, tgt = [], []
    for f in files:
        f = f.astype(np.int64)
        padded = np.concatenate([np.full(context, VOCAB, np.int64), f])
        idx = np.arange(1, len(f))[:, None] + np.arange(context)[None, :]  # positions 1.. of f
        ctx.append(padded[idx])
        tgt.append(f[1:])
    return np.concatenate(ctx), np.concatenate(tgt)
