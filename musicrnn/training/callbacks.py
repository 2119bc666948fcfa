"""Fault tolerance for ``musicrnn.fit``: a run killed at hour five loses minutes, not hours.

- ``AtomicCheckpointIO``: every checkpoint is written to a temp file in the same folder, fsynced and
  ``os.replace``d, so a kill mid-write leaves the previous complete file (never a torn one).
- ``LastCheckpoint``: the only writer of ``last.ckpt``; at every epoch end, every N steps, every
  T minutes (long CPU epochs) and on SIGTERM / Ctrl-C (then exits 143 / 130). Lightning's own
  ``save_last`` skips epochs whose val/loss did not improve.
- ``ExactResume``: puts the global RNG states (torch, numpy, python) into the checkpoint; with the
  datamodule's ``ResumableLoader`` (``musicrnn.data.resumable``: same order, same remaining batches) a
  resumed run reaches the same weights as an uninterrupted one.
- ``NaNGuard``: stops at the first non-finite loss with one line naming the step, and refuses to
  write a checkpoint with non-finite weights (the last good ``last.ckpt`` is kept).
"""
from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.trainer.states import TrainerFn

from musicrnn.data.resumable import per_rank, rng_state, set_rng_state, this_rank
from musicrnn.diskspace import check_room, save_error
from musicrnn.errors import MusicRNNError
from musicrnn.io_utils import atomic_write
from musicrnn.runlock import stale_temps


# ---- atomic checkpoint files -----------------------------------------------------------------------
class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temp file beside the target, fsync file and folder, then ``os.replace``."""

    def __init__(self) -> None:
        super().__init__()
        self.saves = 0  # checkpoint writes by this process

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        path = os.fspath(path)
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        data = buf.getbuffer()
        self.saves += 1
        folder = os.path.dirname(os.path.abspath(path))
        for stale in stale_temps(path):  # ours, or left by a run killed mid-write; never a live run's
            with _suppress_os():
                os.unlink(stale)
        check_room(folder, path, len(data))
        try:
            with atomic_write(path) as f:
                self.write(f, data)
        except OSError as e:
            raise save_error(folder, path, len(data), e) from None
        with _suppress_os():  # make the rename itself durable
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


    def write(self, f, data) -> None:
        """Write the serialised checkpoint into the open temp file (a seam for fault-injection tests)."""
        f.write(data)


class _suppress_os:
    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        return typ is not None and issubclass(typ, OSError)


# ---- last.ckpt: epoch ends, every N steps, every T minutes, and on SIGTERM / Ctrl-C ---------------
class StopRequested(SystemExit):
    """SIGTERM or Ctrl-C during ``fit``: raised once last.ckpt is written; exits 128 + the signal number."""


class LastCheckpoint(Checkpoint):
    """Writes only ``dirpath/last.ckpt``: after every validation / epoch, every ``every_n_steps``
    optimizer steps and every ``every_minutes`` minutes of training (whichever comes first).

    A ``Checkpoint`` (Lightning's public base class) so Lightning runs its epoch-end hook with the other
    checkpoint callbacks, after the LightningModule's and after the best-model ModelCheckpoint (it is
    last in the list): the best score it records is then already in last.ckpt.

    SIGTERM and the first Ctrl-C ask the run to stop: at the end of the current step (or validation)
    last.ckpt is written and the run exits with 128 + the signal number (143, 130); a second Ctrl-C
    stops at once. Under DDP the signal may reach one rank only (a scheduler's SIGTERM to rank 0): the
    handler only takes note, and at the end of every step (or validation) all ranks agree whether any
    was asked to stop, so they save and leave together instead of one waiting for the other forever.
    (Lightning's own SIGTERM handler runs a collective inside the handler, which deadlocks.)
    """

    def __init__(self, dirpath: str, every_n_steps: int | None = None, every_minutes: float | None = None):
        self.dirpath = dirpath
        self.every_n_steps = every_n_steps or 0
        self.every_seconds = (every_minutes or 0) * 60.0
        self._last_save_time = time.monotonic()
        self._saved_step = 0  # no need to save when no steps were taken
        self.stop_signal: int | None = None
        self._handlers: dict[int, Any] = {}

    @property
    def state_key(self) -> str:  # the key of the ModelCheckpoint-based version: its checkpoints resume silently
        return self._generate_state_key(monitor=None, mode="min", every_n_train_steps=0, every_n_epochs=1,
                                        train_time_interval=None)

    @property
    def path(self) -> str:
        return os.path.join(self.dirpath, "last.ckpt")

    # ---- signals ------------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        self._last_save_time = time.monotonic()
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._handlers[sig] = signal.signal(sig, self._request_stop)

    def _request_stop(self, signum, frame) -> None:
        self.stop_signal = signum
        signal.signal(signum, self._handlers.pop(signum, signal.SIG_DFL))  # a second one acts at once
        print(f"fit: {signal.Signals(signum).name} — writing {self.path} at the end of this step, then exiting "
              f"(send it again to stop now)", file=sys.stderr, flush=True)

    def _restore_handlers(self) -> None:  # before Lightning restores its own (at its teardown)
        for sig, handler in self._handlers.items():
            signal.signal(sig, handler)
        self._handlers = {}

    def _stop_if_asked(self, trainer) -> None:
        if trainer.world_size > 1:  # every rank calls this at the same points: agree on the signal
            asked = int(trainer.strategy.reduce(
                torch.tensor(self.stop_signal or 0, device=trainer.strategy.root_device), reduce_op="max"))
            self.stop_signal = asked or None
        if self.stop_signal is not None:
            self._save_last(trainer)
            raise StopRequested(128 + self.stop_signal)

    # ---- when to save -------------------------------------------------------------------------------
    def _skip(self, trainer) -> bool:
        return (bool(trainer.fast_dev_run) or trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking
                or self._saved_step == trainer.global_step)

    @staticmethod
    def _saves_on_train_epoch_end(trainer) -> bool:
        """Lightning's ModelCheckpoint rule: at the train epoch end only when validation does not follow it."""
        if trainer.check_val_every_n_epoch != 1:
            return False
        n_val = trainer.num_val_batches
        if (sum(n_val) if isinstance(n_val, list) else n_val) == 0:
            return True
        return trainer.val_check_interval == 1.0

    def _save_last(self, trainer) -> None:
        if not self._skip(trainer):
            trainer.save_checkpoint(self.path, weights_only=False)  # said, so Lightning does not say it
            self._saved_step = trainer.global_step
            self._last_save_time = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # the epoch-end save follows (after validation, which a resume must not skip)
        step_due = self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0
        time_due = self.every_seconds > 0 and time.monotonic() - self._last_save_time >= self.every_seconds
        if step_due or time_due:
            self._save_last(trainer)
        self._stop_if_asked(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._saves_on_train_epoch_end(trainer):
            self._save_last(trainer)
            self._stop_if_asked(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and not self._saves_on_train_epoch_end(trainer):
            self._save_last(trainer)
            self._stop_if_asked(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save_last(trainer)  # e.g. max_steps reached mid-epoch
        self._restore_handlers()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore_handlers()


# ---- exact resume: RNG + mid-epoch loader position -------------------------------------------------
class ExactResume(Callback):
    """Checkpoints the global RNG states (the datamodule's ``ResumableLoader`` checkpoints its position).

    It also repairs one gap of Lightning's resume: on the first epoch after a restart Lightning skips
    the epoch's ReduceLROnPlateau step (the monitored metric is not in the checkpoint), so a resumed
    run would drift from an uninterrupted one. We save the monitored values and take that step here.
    """

    def __init__(self) -> None:
        self._trainer: L.Trainer | None = None
        self._saved_metrics: dict[str, float] = {}
        self._resumed_at_epoch_end = False
        self._pending: tuple[dict, int] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def _plateaus(self, trainer) -> list:
        return [c for c in trainer.lr_scheduler_configs if c.reduce_on_plateau and c.interval == "epoch"]

    def state_dict(self) -> dict:
        metrics = {}
        if self._trainer is not None:
            for c in self._plateaus(self._trainer):
                v = self._trainer.callback_metrics.get(c.monitor)
                if v is not None:
                    metrics[c.monitor] = float(v)
        rng = rng_state()
        return {"rng": rng, "rng_per_rank": per_rank(rng), "metrics": metrics}

    def load_state_dict(self, state_dict: dict) -> None:
        if "rng_per_rank" in state_dict:  # each DDP rank its own stream
            set_rng_state(this_rank(state_dict["rng_per_rank"]))
        elif "rng" in state_dict:
            set_rng_state(state_dict["rng"])
        self._saved_metrics = dict(state_dict.get("metrics", {}))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loop = trainer.fit_loop
        # saved after this epoch's validation: it is not re-run, and callback_metrics holds the sanity check's
        self._resumed_at_epoch_end = loop.restarted_on_epoch_end
        if loop.resumed_on_epoch_end:  # Lightning goes straight to the next epoch: no epoch-end hooks at all
            self._step_plateaus(trainer, self._saved_metrics, trainer.current_epoch - 1)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loop = trainer.fit_loop
        progress = loop.epoch_loop.batch_progress
        all_ready = progress.current.ready == trainer.num_training_batches or progress.is_last_batch
        if loop.restarting and all_ready:  # Lightning will skip the epoch's scheduler step
            metrics = self._saved_metrics if self._resumed_at_epoch_end else trainer.callback_metrics
            # take it where Lightning would: after every on_train_epoch_end (checkpoints save there)
            self._pending = ({k: float(v) for k, v in metrics.items() if k in self._monitors(trainer)},
                             trainer.current_epoch)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:
            self._step_plateaus(trainer, *self._pending)
            self._pending = None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.on_train_epoch_start(trainer, pl_module)

    def _monitors(self, trainer: L.Trainer) -> set[str]:
        return {c.monitor for c in self._plateaus(trainer)}

    def _step_plateaus(self, trainer: L.Trainer, metrics: dict, epoch: int) -> None:
        for c in self._plateaus(trainer):
            value = metrics.get(c.monitor)
            if value is not None and epoch % c.frequency == 0:
                c.scheduler.step(float(value))


# ---- NaN / Inf -------------------------------------------------------------------------------------
class TrainingDiverged(MusicRNNError):
    """The loss or the weights became NaN/Inf; the run stops, the last good checkpoint is kept."""


class NaNGuard(Callback):
    """Stop at the first non-finite loss (before its backward pass, so nothing is updated with it) and
    refuse to save any checkpoint whose weights are not finite."""

    def __init__(self, last_path: str = "checkpoints/last.ckpt") -> None:
        self.last_path = last_path

    def _fail(self, trainer, what: str) -> None:
        last = self.last_path if os.path.isfile(self.last_path) else None
        keep = f"last good checkpoint: {last}" if last else "no checkpoint was written yet"
        raise TrainingDiverged(f"{what} at step {trainer.global_step} (epoch {trainer.current_epoch}) — lower "
                               f"--model.lr or set --trainer.gradient_clip_val; {keep}")

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss).all():
            self._fail(trainer, f"loss became {'NaN' if torch.isnan(loss).any() else 'Inf'}")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        bad = [k for k, v in checkpoint.get("state_dict", {}).items()
               if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            self._fail(trainer, f"weights became non-finite ({bad[0]})")
