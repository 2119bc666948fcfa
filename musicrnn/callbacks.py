"""Fault tolerance for ``musicrnn.fit``: a run killed at hour five loses minutes, not hours.

- ``AtomicCheckpointIO``: every checkpoint is written to a temp file in the same folder, fsynced and
  ``os.replace``d, so a kill mid-write leaves the previous complete file (never a torn one).
- ``LastCheckpoint``: the only writer of ``last.ckpt``; at every epoch end, every N steps and every
  T minutes (long CPU epochs). Lightning's own ``save_last`` skips epochs whose val/loss did not improve.
- ``ExactResume``: puts the global RNG states (torch, numpy, python) into the checkpoint and makes the
  training loader resumable mid-epoch (same order, same remaining batches), so a resumed run reaches
  the same weights as an uninterrupted one.
- ``NaNGuard``: stops at the first non-finite loss with one line naming the step, and refuses to
  write a checkpoint with non-finite weights (the last good ``last.ckpt`` is kept).
- ``FaultInjector``: test-only hooks (environment variables) that SIGKILL the run at a chosen step
  or in the middle of a checkpoint write, so the tests above are deterministic.
"""
from __future__ import annotations

import io
import os
import random
import signal
import time
from typing import Any, Iterator

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .errors import MusicRNNError
from .diskspace import check_room, save_error
from .io_utils import atomic_write
from .runlock import stale_temps

ENV_KILL_AT_STEP = "MUSICRNN_FAULT_KILL_AT_STEP"  # SIGKILL before optimizer step N (N steps done)
ENV_KILL_IN_SAVE = "MUSICRNN_FAULT_KILL_IN_SAVE"  # SIGKILL halfway through the N-th checkpoint write (1-based)
ENV_NAN_AT_STEP = "MUSICRNN_FAULT_NAN_AT_STEP"  # poison the weights before step N (tests the NaN guard)


# ---- RNG state that survives torch.load(weights_only=True) -----------------------------------------
def rng_state() -> dict:
    """Global RNG states as tensors / ints / tuples only (numpy's array becomes a tensor)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- atomic checkpoint files -----------------------------------------------------------------------
class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temp file beside the target, fsync file and folder, then ``os.replace``."""

    def __init__(self) -> None:
        super().__init__()
        self.saves = 0  # checkpoint writes by this process (the fault hook counts them)

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        path = os.fspath(path)
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        data = buf.getbuffer()
        self.saves += 1
        kill_at = os.environ.get(ENV_KILL_IN_SAVE)
        folder = os.path.dirname(os.path.abspath(path))
        for stale in stale_temps(path):  # ours, or left by a run killed mid-write; never a live run's
            with _suppress_os():
                os.unlink(stale)
        check_room(folder, path, len(data))
        try:
            with atomic_write(path) as f:
                if kill_at and int(kill_at) == self.saves:
                    f.write(data[: len(data) // 2])
                    f.flush()
                    os.fsync(f.fileno())
                    os.kill(os.getpid(), signal.SIGKILL)
                f.write(data)
        except OSError as e:
            raise save_error(folder, path, len(data), e) from None
        with _suppress_os():  # make the rename itself durable
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class _suppress_os:
    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        return typ is not None and issubclass(typ, OSError)


# ---- last.ckpt: epoch ends, every N steps, every T minutes -----------------------------------------
class LastCheckpoint(ModelCheckpoint):
    """Writes only ``dirpath/last.ckpt``: after every validation / epoch, every ``every_n_steps``
    optimizer steps and every ``every_minutes`` minutes of training (whichever comes first)."""

    def __init__(self, dirpath: str, every_n_steps: int | None = None, every_minutes: float | None = None):
        super().__init__(dirpath=dirpath, monitor=None, save_top_k=0, save_last=True, enable_version_counter=False)
        self.every_n_steps = every_n_steps or 0
        self.every_seconds = (every_minutes or 0) * 60.0
        self._last_save_time = time.monotonic()

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        self._last_save_time = time.monotonic()

    def _save_last(self, trainer) -> None:
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._last_save_time = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._should_skip_saving_checkpoint(trainer):
            return
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # the epoch-end save follows (after validation, which a resume must not skip)
        step_due = self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0
        time_due = self.every_seconds > 0 and time.monotonic() - self._last_save_time >= self.every_seconds
        if step_due or time_due:
            self._save_last(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(trainer):
            self._save_last(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(trainer):
            self._save_last(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if not self._should_skip_saving_checkpoint(trainer):  # e.g. max_steps reached mid-epoch
            self._save_last(trainer)


# ---- exact resume: RNG + mid-epoch loader position -------------------------------------------------
class ResumableLoader:
    """Wraps the training DataLoader; Lightning stores its ``state_dict`` in the checkpoint.

    The state is the global RNG state when this epoch's iterator was created (it decides the
    sampler's permutation and the workers' seeds) and how many batches were handed out. Resuming
    replays the iterator from that RNG state, skips the batches already trained on, then restores
    the RNG state of the moment of the checkpoint (set by ``ExactResume``).
    """

    def __init__(self, loader) -> None:
        self.loader = loader
        self._epoch_rng: dict | None = None
        self._fetched = 0
        self._pending: dict | None = None

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        pending, self._pending = self._pending, None
        if pending and pending.get("epoch_rng") is not None and 0 < pending["fetched"] < len(self.loader):
            now = rng_state()
            set_rng_state(pending["epoch_rng"])
            self._epoch_rng, self._fetched = pending["epoch_rng"], 0
            it = iter(self.loader)
            for _ in range(pending["fetched"]):  # fetch (not only index) so augmentation RNG use replays too
                next(it)
                self._fetched += 1
            set_rng_state(now)
        else:
            self._epoch_rng, self._fetched = rng_state(), 0
            it = iter(self.loader)
        for batch in it:
            self._fetched += 1
            yield batch

    def state_dict(self) -> dict:
        return {"epoch_rng": self._epoch_rng, "fetched": self._fetched}

    def load_state_dict(self, state: dict) -> None:
        self._pending = state


class ExactResume(Callback):
    """Checkpoints the global RNG states and makes the datamodule's training loader resumable.

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
        dm = trainer.datamodule
        if stage != "fit" or dm is None or getattr(dm, "_musicrnn_resumable", False):
            return
        if trainer.world_size > 1:  # keep a plain DataLoader so Lightning can shard it (resume: epoch-exact only)
            return
        make = dm.train_dataloader
        dm.train_dataloader = lambda: ResumableLoader(make())
        dm._musicrnn_resumable = True

    def _plateaus(self, trainer) -> list:
        return [c for c in trainer.lr_scheduler_configs if c.reduce_on_plateau and c.interval == "epoch"]

    def state_dict(self) -> dict:
        metrics = {}
        if self._trainer is not None:
            for c in self._plateaus(self._trainer):
                v = self._trainer.callback_metrics.get(c.monitor)
                if v is not None:
                    metrics[c.monitor] = float(v)
        return {"rng": rng_state(), "metrics": metrics}

    def load_state_dict(self, state_dict: dict) -> None:
        if "rng" in state_dict:
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
        if loop.restarting and loop.epoch_loop._num_ready_batches_reached():  # Lightning will skip the step
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


# ---- test hooks ------------------------------------------------------------------------------------
class FaultInjector(Callback):
    """Deterministic faults for the reliability tests, driven by environment variables (never set in use)."""

    def __init__(self) -> None:
        self.kill_at = _env_int(ENV_KILL_AT_STEP)
        self.nan_at = _env_int(ENV_NAN_AT_STEP)

    @classmethod
    def from_env(cls) -> "FaultInjector | None":
        return cls() if any(os.environ.get(k) for k in (ENV_KILL_AT_STEP, ENV_NAN_AT_STEP)) else None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.kill_at is not None and trainer.global_step == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.nan_at is not None and trainer.global_step == self.nan_at:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return int(v) if v else None
