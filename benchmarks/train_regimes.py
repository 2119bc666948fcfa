"""Predicted notes per CPU-second: the tutorial's windowed regime vs whole-piece training, same core.

Usage: python benchmarks/train_regimes.py [--root DIR] [--steps N] [--cores ...]

One process, one torch thread, CPU-time clock (``time.process_time``), the bare training step
(``compute_loss`` + backward + Adam) on real batches of the data module, steps of the two regimes
alternate so a busy machine slows both alike. A windowed batch with ``loss_on: last`` predicts one note
per window (64 per batch); a whole-piece batch predicts every masked-in position (B x L).
Prints one line per (core, regime) and the ratio pieces / windows per core.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from musicrnn.data.datamodule import MaestroDataModule  # noqa: E402
from musicrnn.model.cores import HybridLSTM, LSTMNet  # noqa: E402
from musicrnn.model.lightning import MusicModel  # noqa: E402

CORES = {
    "lstm128": (lambda d: LSTMNet(d, 128), {}),
    "lstm512": (lambda d: LSTMNet(d, 512), {"pitch_embedding": 64, "timing_head": "binned", "velocity": True}),
    "hybrid": (lambda d: HybridLSTM(d, [256, 128], [128], 0.3),
               {"pitch_embedding": 32, "timing_head": "binned", "velocity": True}),
}


class Trainer:
    """One model, its optimizer and an endless stream of its regime's batches; ``step()`` is timed."""

    def __init__(self, model, dm):
        self.model, self.dm = model, dm
        self.opt = torch.optim.Adam(model.parameters(), 1e-3)
        self.it = iter(dm.train_dataloader())
        self.notes, self.cpu = 0, 0.0

    def batch(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.dm.train_dataloader())
            return next(self.it)

    def step(self, count: bool = True) -> None:
        batch = self.batch()  # fetching is not timed: both regimes slice ready tensors
        t = time.process_time()
        loss, _, _, _, mask = self.model.compute_loss(batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if count:
            self.cpu += time.process_time() - t
            per_row = batch[0].shape[1] - 1 if self.model.hparams.loss_on == "all" else 1
            self.notes += int(mask.sum()) if mask is not None else batch[0].shape[0] * per_row

    @property
    def rate(self) -> float:
        return self.notes / self.cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=os.environ.get("MUSICRNN_DATA"))
    p.add_argument("--steps", type=int, default=20, help="timed steps per regime (alternating)")
    p.add_argument("--cores", nargs="+", default=["lstm128"], choices=sorted(CORES))
    p.add_argument("--piece-length", type=int, default=256)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    win = MaestroDataModule(a.root, seq_length=25, batch_size=64)
    pcs = MaestroDataModule(a.root, seq_length=a.piece_length, batch_size=64, regime="pieces")
    win.setup("fit"), pcs.setup("fit")
    for name in a.cores:
        make, extra = CORES[name]
        runs = {}
        for regime, dm in (("windows", win), ("pieces", pcs)):
            loss_on = "last" if regime == "windows" else "all"
            model = MusicModel(net=make, loss_on=loss_on, seq_length=dm.hparams.seq_length, **extra).train()
            runs[regime] = Trainer(model, dm)
            for _ in range(2):
                runs[regime].step(count=False)  # warm-up
        # alternate: a windows step, then enough pieces steps to spend about the same CPU time, so a
        # busy machine slows both regimes alike
        for _ in range(a.steps):
            runs["windows"].step()
            runs["pieces"].step()
        w, pc = runs["windows"].rate, runs["pieces"].rate
        print(f"{name:8s} windows (seq 25, loss on last, batch 64): {w:10.0f} predicted notes / CPU-s")
        print(f"{name:8s} pieces  (seq {a.piece_length}, every note, 64 streams): {pc:10.0f} predicted notes / CPU-s")
        print(f"{name:8s} ratio pieces / windows: {pc / w:.1f}x")


if __name__ == "__main__":
    main()
