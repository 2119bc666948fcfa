"""Samples scored against the pianist: continuations of real primes by a network (at several sampling
settings) and by the reference continuations, each described by note statistics, their overlap with
the real continuations (``stats.compare``) and their structure against the prime (``structure``).

Reference continuations of the same primes (``REFERENCES``):
- ``real``: what the pianist played next (what a model should match, not exceed);
- ``loop``: the prime played again and again (scores well on note statistics: what they cannot see);
- ``trigram``: pitches drawn from a pitch trigram of the train split, step, duration and velocity
  drawn from the prime's own notes (no memory beyond two notes).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musicrnn.evaluation.ngram import PitchNgram
from musicrnn.evaluation.stats import compare, describe
from musicrnn.evaluation.structure import summarize
from musicrnn.evaluation.windows import PrimePair
from musicrnn.notes import Notes
from musicrnn.sampling.generator import generate

REFERENCES = ("real", "loop", "trigram")


def loop_prime(prime: Notes, num_notes: int) -> Notes:
    """The prime repeated until ``num_notes`` notes, each copy one mean step after the previous one."""
    f = prime.features(velocity=True)
    f[0, 1] = float(f[1:, 1].mean()) if len(f) > 1 else 0.25
    reps = -(-num_notes // len(f))
    return Notes.from_features(np.tile(f, (reps, 1))[:num_notes])


def trigram_continuations(model: PitchNgram, primes: Sequence[Notes], num_notes: int, seed: int) -> list[Notes]:
    """``model``'s pitches after each prime; step, duration and velocity drawn from the prime's notes."""
    rng = np.random.default_rng(seed)
    k = max(model.order - 1, 1)
    pitches = model.sample(np.stack([np.asarray(p.pitch[-k:], np.int64) for p in primes]), num_notes, rng)
    out = []
    for prime, pitch in zip(primes, pitches):
        f = prime.features(velocity=True)
        rows = f[rng.integers(0, len(f), num_notes)]
        rows[:, 0] = pitch
        out.append(Notes.from_features(rows))
    return out


def score(pairs: Sequence[PrimePair], continuations: Sequence[Notes], num_notes: int) -> dict:
    """Note statistics, overlap with the real continuations (first ``num_notes`` notes) and structure
    (``register_drift`` over the whole continuations when they are longer than ``num_notes``)."""
    short = [c[:num_notes] for c in continuations]
    real = [p.continuation[:num_notes] for p in pairs]
    primes = [p.prime for p in pairs]
    long = continuations if min(len(c) for c in continuations) > num_notes else None
    cmp = compare(short, real)
    return {"describe": describe(short), "compare": cmp, "overlap": float(cmp["mean_oa"]),
            "structure": summarize(primes, short, long)}


def reference_scores(pairs: Sequence[PrimePair], num_notes: int, trigram: PitchNgram | None, seed: int = 0) -> dict:
    """``score`` of each reference continuation (``REFERENCES``; trigram only when a model is given)."""
    total = len(pairs[0].continuation)
    out = {"real": score(pairs, [p.continuation for p in pairs], num_notes),
           "loop": score(pairs, [loop_prime(p.prime, total) for p in pairs], num_notes)}
    if trigram is not None:
        out["trigram"] = score(pairs, trigram_continuations(trigram, [p.prime for p in pairs], total, seed),
                               num_notes)
    return out


def network_scores(net, pairs: Sequence[PrimePair], num_notes: int, temperatures: Sequence[float], *,
                   top_p: float | None = None, timing_temperature: float | None = None, seed: int = 0,
                   device="cpu", roll_dir: Path | None = None, roll_prefix: str = "sample") -> dict:
    """{str(temperature): ``score``} of the network's continuations of every prime (prime j seeded
    ``seed + j``), as long as the real continuations; piano rolls of the first one when asked."""
    total = len(pairs[0].continuation)
    extra = {} if timing_temperature is None else {"timing_temperature": timing_temperature}
    out = {}
    for t in temperatures:
        generated = [generate(net, p.prime, total, temperature=t, top_p=top_p, seed=seed + j, device=device,
                              **extra)[0] for j, p in enumerate(pairs)]
        out[str(t)] = score(pairs, generated, num_notes)
        if roll_dir is not None:
            from musicrnn.render import save_piano_roll

            save_piano_roll(generated[0][:num_notes], Path(roll_dir) / f"{roll_prefix}_T{t}.png",
                            title=f"{roll_prefix}, temperature {t}")
    return out
