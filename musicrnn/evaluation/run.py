"""``evaluate``: everything ``python -m musicrnn.evaluate`` reports about one checkpoint, in process
(the experiments runner calls it too): next-note metrics on a split's windows, samples of the network
on real primes of that split scored against the pianist (note statistics, their overlap, structure),
the reference rows on the same primes, and optionally the real-vs-real ceiling and the long-context
comparison.

Windows and primes come from the data module (``evaluation.windows``) with the data settings the run
recorded (``sustain``, ``stride``, the validation window). Choose sampling settings on the validation
split; report them on the test split.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from musicrnn.evaluation.floor_ceiling import file_pitches, real_ceiling
from musicrnn.evaluation.metrics import long_context_pitch_ce, window_metrics
from musicrnn.evaluation.ngram import PitchNgram
from musicrnn.evaluation.samples import network_scores, reference_scores
from musicrnn.evaluation.windows import prime_pairs
from musicrnn.model.checkpoint import LoadedCheckpoint
from musicrnn.sampling.generator import resolve_device

DEFAULT_TEMPERATURES = (0.8, 1.0, 1.5, 2.0)
SPLITS = ("test", "validation")


def evaluate(ckpt: LoadedCheckpoint, data_root: str | None = None, *, split: str = "test",
             max_windows: int | None = 20000, temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
             samples: int = 8, num_notes: int = 200, long_notes: int = 1000, seed: int = 0, device: str = "cpu",
             top_p: float | None = None, timing_temperature: float | None = None, ceiling: bool = False,
             ceiling_seeds: int = 10, long_context: bool = False, prime_length: int | None = None,
             references: bool = True, roll_dir: Path | None = None, roll_prefix: str = "sample") -> dict:
    """The evaluation of a loaded checkpoint as one JSON-ready dict (see the module doc).

    ``long_notes``: length of every continuation (>= ``num_notes``): statistics and structure use its
    first ``num_notes`` notes, ``register_drift`` all of it. ``ceiling``: the real-vs-real overlap of
    two disjoint sets of ``samples`` excerpts, over ``ceiling_seeds`` seeds. ``long_context``: pitch CE
    over whole pieces against the last 50 notes only (``metrics.long_context_pitch_ce``).
    """
    t0 = time.perf_counter()
    dev = resolve_device(device)  # once: metrics and sampling run on the same device
    net = ckpt.net.to(dev).eval()
    data = ckpt.data
    sustain, stride = bool(data.get("sustain", False)), int(data.get("stride", 1) or 1)
    window = data.get("val_window_length") or net.seq_length  # the note after the window the run validated on
    weights = {k: float(ckpt.hparams.get(f"{k}_weight", 1.0)) for k in net.heads}
    metrics, notes = window_metrics(net, data_root, split, window=window, max_windows=max_windows, stride=stride,
                                    sustain=sustain, loss_weights=weights, device=dev)
    pairs = prime_pairs(data_root, split, prime_length or net.seq_length, max(long_notes, num_notes), samples,
                        seed=seed, stride=stride, sustain=sustain)
    result = {"ckpt": str(ckpt.path), "split": split, "metrics": metrics, "notes": notes,
              "parameters": sum(p.numel() for p in net.parameters()),
              "sampling": {"top_p": top_p, "timing_temperature": timing_temperature, "seed": seed,
                           "primes": len(pairs), "num_notes": num_notes, "long_notes": max(long_notes, num_notes)}}
    result["samples"] = network_scores(net, pairs, num_notes, temperatures, top_p=top_p,
                                       timing_temperature=timing_temperature, seed=seed, device=dev,
                                       roll_dir=roll_dir, roll_prefix=roll_prefix)
    if references:
        trigram = PitchNgram(3).fit(file_pitches(data_root, "train", sustain=sustain))
        result["references"] = reference_scores(pairs, num_notes, trigram, seed)
    if ceiling:
        result["ceiling"] = real_ceiling(data_root, num_notes, samples, ceiling_seeds, split, sustain)
    if long_context:
        result["long_context"] = long_context_pitch_ce(net, data_root, split, sustain=sustain, device=dev)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def overlaps(result: dict) -> dict[str, float]:
    """{temperature: mean overlap with the real continuations} of an ``evaluate`` result."""
    return {t: r["overlap"] for t, r in result["samples"].items()}


def structure_rows(result: dict) -> dict[str, dict]:
    """{row name: structure} of an ``evaluate`` result: the references, then the network per temperature."""
    rows = {name: r["structure"] for name, r in (result.get("references") or {}).items()}
    rows.update({f"T={t}": r["structure"] for t, r in result["samples"].items()})
    return rows
