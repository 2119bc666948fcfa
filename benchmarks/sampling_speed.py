"""Per-note sampling time: stepping with carried state (O(1)/note) vs re-running the window (O(L)/note).

    python benchmarks/sampling_speed.py [--notes 200] [--seq-length 25] [--threads 1] [--device cpu]

Measured in one run, interleaved and best-of-``--repeats``, on untrained weights (timing does not depend
on the weights). Each timing is the note loop of a started ``Generator`` (``generate_with``): the one-off
setup both modes share (building the generator, running the prime once) is left out, so "per note" is
the cost of one more note. Both modes share the sampling and bookkeeping code; they differ only in
feeding the core one note with carried state versus re-running it over the last ``seq_length`` notes.
Also reports notes/s for one batch of ``--batch`` samples (the faster mode). The last line is JSON for
scripts.

One torch thread by default: at batch 1 every op is tiny and waking helper threads costs more than
the arithmetic (and on a shared machine extra threads make timings swing).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed musicrnn

from musicrnn.model.cores import HybridLSTM, LSTMNet  # noqa: E402
from musicrnn.model.network import MusicNet  # noqa: E402
from musicrnn.model.window_cores import CausalTransformer  # noqa: E402
from musicrnn.notes import Notes  # noqa: E402
from musicrnn.sampling.generator import Generator, generate_with  # noqa: E402


def models(seq_length: int) -> dict[str, MusicNet]:
    """The baseline, the hybrid (steppable) and a Transformer (window only, for reference)."""
    return {"LSTM(128) baseline": MusicNet(lambda d: LSTMNet(d, hidden_size=128), seq_length=seq_length),
            "HybridLSTM(256,128)+dense128": MusicNet(
                lambda d: HybridLSTM(d, hidden_sizes=[256, 128], dense_sizes=[128]), seq_length=seq_length),
            "CausalTransformer(d128,2 layers)": MusicNet(lambda d: CausalTransformer(d), seq_length=seq_length)}


def random_prime(n: int, seed: int = 0) -> Notes:
    rng = np.random.default_rng(seed)
    start = np.cumsum(rng.uniform(0, 0.3, n))
    return Notes.from_arrays(rng.integers(40, 90, n), start, start + rng.uniform(0.05, 0.5, n),
                             rng.integers(40, 100, n))


def seconds(model, prime, notes: int, device: str, batch: int = 1, mode: str = "auto") -> float:
    """Wall time of ``notes`` notes for ``batch`` samples from a started generator (setup excluded)."""
    gen = Generator(model, seed=0, device=device, mode=mode)
    gen.start(prime, batch)
    if device != "cpu":
        torch.cuda.synchronize()
    t = time.perf_counter()
    generate_with(gen, notes)
    if device != "cpu":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--notes", type=int, default=200)
    p.add_argument("--seq-length", type=int, default=25)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (shared machines: 1)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    prime = random_prime(a.seq_length)
    print(f"device {a.device}, torch threads {a.threads}, seq_length {a.seq_length}, {a.notes} notes, "
          f"best of {a.repeats}")
    B = a.batch
    print(f"{'model':34s} {'B=1 step':>9s} {'window':>8s} {'ratio':>6s} | {f'B={B} step':>10s} {'window':>8s} "
          f"{'ratio':>6s} | {f'B={B} notes/s':>12s}")
    print(f"{'':34s} {'ms/note':>9s} {'ms/note':>8s} {'':6s} | {'ms/step':>10s} {'ms/step':>8s}")
    results = {}
    for name, model in models(a.seq_length).items():
        model.eval()
        seconds(model, prime, 10, a.device, mode="window")  # warm-up
        t = {k: [] for k in ("step1", "win1", "stepB", "winB")}
        for _ in range(a.repeats):  # interleaved, so machine load hits every variant alike
            if model.steppable:
                t["step1"].append(seconds(model, prime, a.notes, a.device, mode="step"))
                t["stepB"].append(seconds(model, prime, a.notes, a.device, batch=B, mode="step"))
            t["win1"].append(seconds(model, prime, a.notes, a.device, mode="window"))
            t["winB"].append(seconds(model, prime, a.notes, a.device, batch=B, mode="window"))
        ms = {k: min(v) / a.notes * 1e3 if v else float("nan") for k, v in t.items()}  # per generated step
        best_b = min(ms["stepB"], ms["winB"]) if model.steppable else ms["winB"]
        rate = B / best_b * 1e3
        r1, rb = ms["win1"] / ms["step1"], ms["winB"] / ms["stepB"]
        nan_none = lambda x: round(x, 3) if x == x else None  # noqa: E731  (strict JSON has no NaN)
        results[name] = {"steppable": model.steppable, "b1_step_ms": nan_none(ms["step1"]),
                         "b1_window_ms": round(ms["win1"], 3), "b1_ratio": round(r1, 2) if model.steppable else None,
                         f"b{B}_step_ms": nan_none(ms["stepB"]), f"b{B}_window_ms": round(ms["winB"], 3),
                         f"b{B}_ratio": round(rb, 2) if model.steppable else None, f"b{B}_notes_per_s": round(rate)}
        f = lambda x: f"{x:.3f}" if x == x else "n/a"  # noqa: E731  (NaN: not steppable)
        g = lambda x: f"{x:.1f}x" if x == x else "n/a"  # noqa: E731
        print(f"{name:34s} {f(ms['step1']):>9s} {f(ms['win1']):>8s} {g(r1):>6s} | {f(ms['stepB']):>10s} "
              f"{f(ms['winB']):>8s} {g(rb):>6s} | {rate:12.0f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
