"""Deterministic faults for the reliability tests and ``benchmarks/fault_test.py`` (never in the package).

They reach ``python -m musicrnn.fit`` from the command line (``FAULT_ARGS``; this folder on PYTHONPATH)
and read what to do from environment variables, so a run without them is an ordinary run:

- ``FaultInjector`` (a callback): SIGKILL before optimizer step N, poison the weights with NaN there, or
  send the process SIGTERM / SIGINT (Ctrl-C) there.
- ``KillInSaveIO`` (the checkpoint IO plugin, atomic like the real one): SIGKILL halfway through the
  N-th checkpoint write of the process, after fsyncing the half-written temp file.
"""
from __future__ import annotations

import os
import signal

import torch
from lightning.pytorch.callbacks import Callback

from musicrnn.training.callbacks import AtomicCheckpointIO

ENV_KILL_AT_STEP = "MUSICRNN_FAULT_KILL_AT_STEP"  # SIGKILL before optimizer step N (N steps done)
ENV_KILL_IN_SAVE = "MUSICRNN_FAULT_KILL_IN_SAVE"  # SIGKILL halfway through the N-th checkpoint write (1-based)
ENV_NAN_AT_STEP = "MUSICRNN_FAULT_NAN_AT_STEP"  # poison the weights before step N (tests the NaN guard)
ENV_SIGNAL_AT_STEP = "MUSICRNN_FAULT_SIGNAL_AT_STEP"  # "N:TERM" / "N:INT": send the signal before step N
ENV_SIGNAL_RANK = "MUSICRNN_FAULT_SIGNAL_RANK"  # DDP: only this rank signals itself (default: every rank)
FAULT_ARGS = ["--trainer.callbacks+=faults.FaultInjector", "--trainer.plugins=faults.KillInSaveIO"]


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return int(v) if v else None


class FaultInjector(Callback):
    def __init__(self) -> None:
        self.kill_at = _env_int(ENV_KILL_AT_STEP)
        self.nan_at = _env_int(ENV_NAN_AT_STEP)
        at, _, name = os.environ.get(ENV_SIGNAL_AT_STEP, "").partition(":")
        self.signal_at = (int(at), getattr(signal, "SIG" + name)) if at else None
        self.signal_rank = _env_int(ENV_SIGNAL_RANK)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.kill_at is not None and trainer.global_step == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if (self.signal_at is not None and trainer.global_step == self.signal_at[0]
                and self.signal_rank in (None, trainer.global_rank)):
            self.signal_at, (_, sig) = None, self.signal_at  # once
            os.kill(os.getpid(), sig)
        if self.nan_at is not None and trainer.global_step == self.nan_at:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


class KillInSaveIO(AtomicCheckpointIO):
    def write(self, f, data) -> None:
        if self.saves == _env_int(ENV_KILL_IN_SAVE):
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        f.write(data)
