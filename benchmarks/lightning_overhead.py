"""Lightning overhead: training windows/s of the baseline through ``Trainer.fit`` and a bare PyTorch loop.

    python benchmarks/lightning_overhead.py [--steps 150] [--warmup 20] [--rounds 6] [--threads N] [--root DIR]

Both sides train the same baseline (``configs/baseline.yaml`` settings: LSTM(128), seq 25, batch 64) on
the same windows (the bundled sample by default) with the same loss: the bare loop calls
``MusicModel.training_step`` itself (loss, heads and torchmetrics updates), then backward and Adam. So
the difference is what Lightning adds per step (hooks, logging, loop bookkeeping). The Trainer runs with
no logger, checkpointing, progress bar or validation.

Each round runs Lightning then bare (order alternating between rounds) from the same seed; throughput
is timed from the end of step ``warmup`` to the end of the last step (steady state), and separately
for the whole call (fit() set-up included). The ratio is taken within each round, so slow drifts of a
shared machine cancel; the median over rounds is reported. JSON line last. One torch thread by default:
an oversubscribed machine makes multi-threaded timings meaningless.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lightning as L  # noqa: E402
import torch  # noqa: E402

from musicrnn.data.datamodule import MaestroDataModule  # noqa: E402
from musicrnn.model.cores import LSTMNet  # noqa: E402
from musicrnn.model.lightning import MusicModel  # noqa: E402

# Wall time by default; ``--clock cpu`` times by this process's CPU time instead, which a busy shared
# machine does not distort (both sides run in this process, on one torch thread).
CLOCK = [time.perf_counter]


def make_model(seed: int) -> MusicModel:
    torch.manual_seed(seed)
    return MusicModel(net=lambda d: LSTMNet(d, hidden_size=128), seq_length=25, pitch_weight=0.05,
                      step_weight=1.0, duration_weight=1.0, lr=0.005)


class _Clock(L.Callback):
    """Wall time at the end of step ``warmup - 1`` and of the last step."""

    def __init__(self, warmup: int):
        self.warmup, self.t0, self.t1 = warmup, None, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = CLOCK[0]()
        if batch_idx == self.warmup - 1:
            self.t0 = now
        self.t1 = now


def run_lightning(dm: MaestroDataModule, steps: int, warmup: int, seed: int) -> tuple[float, float]:
    """(steady seconds for steps warmup..steps-1, total seconds of fit())."""
    model = make_model(seed)
    clock = _Clock(warmup)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=steps, max_epochs=-1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[clock])
    torch.manual_seed(seed)
    t0 = CLOCK[0]()
    trainer.fit(model, train_dataloaders=dm.train_dataloader())
    total = CLOCK[0]() - t0
    assert trainer.global_step == steps, trainer.global_step
    return clock.t1 - clock.t0, total


def run_bare(dm: MaestroDataModule, steps: int, warmup: int, seed: int) -> tuple[float, float]:
    """The same training with a plain loop: training_step -> backward -> Adam step."""
    model = make_model(seed)
    model.train()
    opt = model.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    torch.manual_seed(seed)
    t_start = CLOCK[0]()
    t0 = t1 = None
    step = 0
    while step < steps:
        for batch in dm.train_dataloader():
            loss = model.training_step(batch, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            now = CLOCK[0]()
            if step == warmup:
                t0 = now
            t1 = now
            if step == steps:
                break
    return t1 - t0, CLOCK[0]() - t_start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--root", default=None, help="MIDI folder (default: the bundled sample)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for both sides (default 1: with more threads than free cores, as on a "
                        "shared machine, OpenMP contention makes timings swing 10x; 0 = torch's choice)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="time by wall clock, or by this process's CPU time (robust on a busy machine)")
    args = p.parse_args()
    if args.clock == "cpu":
        CLOCK[0] = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # self.log outside a Trainer, Lightning tips
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    dm = MaestroDataModule(root=args.root, seq_length=25, batch_size=64)
    dm.prepare_data()
    dm.setup("fit")
    bs, measured = dm.hparams.batch_size, (args.steps - args.warmup)
    print(f"data: {len(dm.datasets['train']):,} train windows; batch {bs}; {args.steps} steps per run "
          f"({args.warmup} warm-up); torch threads {torch.get_num_threads()}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rows = []
    for r in range(args.rounds):
        order = ("lightning", "bare") if r % 2 == 0 else ("bare", "lightning")
        res = {}
        for name in order:
            fn = run_lightning if name == "lightning" else run_bare
            res[name] = fn(dm, args.steps, args.warmup, seed=r)
        wl = measured * bs / res["lightning"][0]
        wb = measured * bs / res["bare"][0]
        rows.append({"lightning_wps": wl, "bare_wps": wb, "overhead": wb / wl - 1,
                     "lightning_total_s": res["lightning"][1], "bare_total_s": res["bare"][1],
                     "overhead_total": res["lightning"][1] / res["bare"][1] - 1})
        print(f"round {r}: Lightning {wl:,.0f} windows/s, bare {wb:,.0f} windows/s, overhead "
              f"{100 * rows[-1]['overhead']:+.1f}% steady ({100 * rows[-1]['overhead_total']:+.1f}% with fit() set-up)")
    med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    print(f"median: Lightning {med['lightning_wps']:,.0f} windows/s, bare {med['bare_wps']:,.0f} windows/s, "
          f"Lightning overhead {100 * med['overhead']:+.1f}% steady, {100 * med['overhead_total']:+.1f}% "
          f"including fit() set-up (target < 10%)")
    print(json.dumps({"steps": args.steps, "warmup": args.warmup, "rounds": args.rounds, "batch_size": bs,
                      "threads": torch.get_num_threads(), **{k: round(v, 4) for k, v in med.items()},
                      "per_round": [{k: round(v, 4) for k, v in row.items()} for row in rows]}))


if __name__ == "__main__":
    main()
