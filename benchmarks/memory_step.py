"""Cost per generated note of the memory of the piece: the one per-note path (``MusicNet.step`` + sample)
at batch 1, LSTM(512) as packaged, without a memory and with pointer memories of several sizes, timed by
CPU clock in one run with the variants interleaved (ratios are what to read on a shared machine).

    python benchmarks/memory_step.py [--notes 300] [--rounds 5] [--sizes 256 512 1024]

The memory's cost per note is O(size x hidden): it must stay small enough to play live (a note every
~20 ms at the fastest MAESTRO passages).
"""
from __future__ import annotations

import argparse
import time
from functools import partial

import torch

from musicrnn.model.cores import LSTMNet
from musicrnn.model.network import MusicNet


def per_note_us(net: MusicNet, notes: int, state) -> tuple[float, object]:
    x = torch.tensor([[60.0, 0.1, 0.2, 64.0]])
    t0 = time.process_time()
    with torch.no_grad():
        for _ in range(notes):
            out, state = net.step(x, None, state)
            x = net.sample(out, 0.9, None, 0.95)
    return (time.process_time() - t0) / notes * 1e6, state


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--notes", type=int, default=300)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    a = p.parse_args()
    torch.set_num_threads(1)
    kw = dict(pitch_embedding=64, velocity=True, composer_dim=16, composers=["?"] * 62, timing_head="binned")
    nets = {"no memory": MusicNet(partial(LSTMNet, hidden_size=512), **kw).eval()}
    for n in a.sizes:
        nets[f"memory {n} (learned)"] = MusicNet(partial(LSTMNet, hidden_size=512), cache_size=n, cache_learn=True,
                                                 **kw).eval()
    # fill every memory first: a full memory is the steady-state cost
    states = {name: per_note_us(net, max(a.sizes), None)[1] for name, net in nets.items()}
    times: dict[str, list[float]] = {k: [] for k in nets}
    for _ in range(a.rounds):
        for name, net in nets.items():
            us, states[name] = per_note_us(net, a.notes, states[name])
            times[name].append(us)
    base = min(times["no memory"])
    for name, ts in times.items():
        print(f"{name:24s} {min(ts):8.0f} us/note (best of {a.rounds})  x{min(ts) / base:.2f}")


if __name__ == "__main__":
    main()
