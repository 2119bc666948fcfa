"""Training speed of each model variant on this machine: windows per second at its config's
sequence length and batch size.

    python benchmarks/train_speed_variants.py                 # the architecture variants
    python benchmarks/train_speed_variants.py --all           # every config in configs/
    python benchmarks/train_speed_variants.py --lightning     # through Trainer.fit (adds its overhead)
    python benchmarks/train_speed_variants.py configs/hybrid.yaml --seconds 10

Default mode is a bare loop (forward + loss + backward + Adam step) on real windows of the bundled
sample, pre-fetched so data loading is not measured. Two rates: windows per wall-clock second (what a run
gets now) and windows per CPU-second of this process (steadier when others load the machine; with
``--threads 1`` it is the single-core throughput). Each config is built through the real CLI, so
what is timed is exactly what ``python -m musicrnn.fit --config X`` trains. Numbers on a shared
machine vary with the load of other users: compare variants within one run.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
VARIANTS = ["exp1_baseline", "exp4a_stacked", "exp4b_bidirectional", "exp4c_lstm_dense", "exp4d_hybrid",
            "exp4e_transformer", "exp5_velocity", "exp7_binned_timing", "hybrid"]


def build(config: Path, workdir: str, extra: list[str]):
    """(model, datamodule) exactly as the fit CLI builds them (nothing is trained or written)."""
    from musicrnn.cli.fit import MusicCLI
    from musicrnn.data.datamodule import MaestroDataModule
    from musicrnn.model.lightning import MusicModel

    sys.argv = sys.argv[:1]  # our own flags are not the fit CLI's
    cli = MusicCLI(MusicModel, MaestroDataModule, run=False, seed_everything_default=1234,
                   args=["--config", str(config), "--trainer.logger", "false", "--trainer.enable_progress_bar",
                         "false", "--checkpoint.dirpath", workdir, "--periodic_checkpoint.dirpath", workdir, *extra],
                   save_config_kwargs={"overwrite": True})
    return cli.model, cli.datamodule, cli.trainer


def bare(model, dm, seconds: float, clip: float | None) -> tuple[float, float]:
    dm.setup("fit")
    batches = list(itertools.islice(iter(dm.train_dataloader()), 8))  # pre-fetched real windows
    opt = torch.optim.Adam(model.parameters(), lr=model.hparams.lr)  # fresh per round: state is tiny
    model.train()

    def step(b):
        opt.zero_grad(set_to_none=True)
        loss = model.compute_loss(b)[0]
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()

    for b in batches[:2]:  # warm-up
        step(b)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    for b in itertools.cycle(batches):
        step(b)
        n += b[0].shape[0]
        if time.perf_counter() - t0 >= seconds:
            break
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def through_lightning(config: Path, seconds: float) -> tuple[float, float]:
    import lightning as L

    class Timer(L.Callback):
        def __init__(self):
            self.n, self.t0 = 0, None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 2:
                self.t0, self.c0 = time.perf_counter(), time.process_time()
            elif self.t0 is not None and time.perf_counter() - self.t0 >= seconds:
                trainer.should_stop = True

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if self.t0 is not None:
                self.n += batch[0].shape[0]

    with tempfile.TemporaryDirectory() as d:
        model, dm, built = build(config, d, [])
        timer = Timer()
        trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                            callbacks=[timer], gradient_clip_val=built.gradient_clip_val)
        trainer.fit(model, dm)
        return timer.n / (time.perf_counter() - timer.t0), timer.n / (time.process_time() - timer.c0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("configs", nargs="*", help="config files (default: the architecture variants)")
    p.add_argument("--all", action="store_true", help="every config in configs/")
    p.add_argument("--seconds", type=float, default=4.0, help="timed seconds per variant")
    p.add_argument("--lightning", action="store_true", help="time Trainer.fit instead of a bare loop")
    p.add_argument("--rounds", type=int, default=2,
                   help="interleaved rounds over all configs; the best round is reported (others' load)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    os.environ.pop("MUSICRNN_DATA", None)  # the bundled sample
    if a.configs:
        configs = [Path(c) for c in a.configs]
    elif a.all:
        configs = sorted((REPO / "configs").glob("*.yaml"))
    else:
        configs = [REPO / "configs" / f"{v}.yaml" for v in VARIANTS]
    print(f"# {'lightning' if a.lightning else 'bare loop'}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs (shared: numbers vary with load)")
    built, best, cpu = {}, {c: 0.0 for c in configs}, {c: 0.0 for c in configs}
    with tempfile.TemporaryDirectory() as d:
        for c in configs:
            built[c] = build(c, d, [])
    for r in range(a.rounds):
        for c in configs:
            model, dm, trainer = built[c]
            rate, per_cpu = (through_lightning(c, a.seconds) if a.lightning
                             else bare(model, dm, a.seconds, trainer.gradient_clip_val))
            best[c], cpu[c] = max(best[c], rate), max(cpu[c], per_cpu)
            print(f"  round {r + 1}: {c.stem} {rate:.1f} windows/s, {per_cpu:.1f} per CPU-second",
                  file=sys.stderr, flush=True)
    print(f"{'config':24s} {'net':18s} {'seq':>4s} {'batch':>5s} {'params':>8s} {'windows/s':>10s} {'per CPU-s':>10s}")
    for c in configs:
        model, dm, _ = built[c]
        params = sum(p.numel() for p in model.parameters())
        print(f"{c.stem:24s} {type(model.network.core).__name__:18s} {model.hparams.seq_length:4d} "
              f"{dm.hparams.batch_size:5d} {params:8d} {best[c]:10.1f} {cpu[c]:10.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
