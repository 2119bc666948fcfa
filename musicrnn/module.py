"""``MusicModel``: the LightningModule. It owns input encoding, loss, metrics, logging and optimisers;
the sequence core (``nets``) and output heads (``heads``) are plain modules it composes.

A batch is ``(window, composer)``: window (B, L+1, 4) raw features pitch, step, duration, velocity.
Inputs are the first L rows, encoded like the tutorial (pitch / 128, step and duration in seconds),
optionally with a learned pitch embedding, velocity / 127 and a composer embedding; the target is
row L (``loss_on="last"``, the tutorial) or rows 1..L (``loss_on="all"``: every position predicts its
next note, many more training signals per window; causal cores only).
"""
from __future__ import annotations

from typing import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from .checkpoint import load_checkpoint_dict
from .errors import CheckpointError, ConfigError
from .heads import BinnedHead, PitchHead, PositivePressureHead, log_edges, velocity_edges
from .nets import LSTMNet, Net
from .pieces import mask_state
from .ranges import check_ranges
from .stepper import Stepper, _core_plan

CHECKPOINT_FORMAT = 1
TIMING_HEADS = ("mse", "binned")
SCHEDULERS = ("plateau", "exponential", "none")
DEFAULT_VELOCITY = 100.0  # what sample_next plays when velocity is not modelled


class MusicModel(L.LightningModule):
    """Next-note model: encoder -> core -> pitch / step / duration [/ velocity] heads.

    Args:
        net: the sequence core, chosen by ``class_path``; called with the encoded input size.
        seq_length: context notes per window (linked from ``data.seq_length`` by the CLI).
        pitch_weight, step_weight, duration_weight, velocity_weight: loss weights (tutorial: 0.05, 1, 1).
            With ``timing_head: binned`` every head is a cross-entropy in nats, so weights of 1 make
            the loss the per-note NLL.
        pressure: weight of the positive-pressure term of the step/duration MSE heads.
        timing_head: "mse" (the tutorial's regression) or "binned" (categorical over log-spaced bins:
            0, then 1 ms .. ``step_max`` / ``duration_max`` seconds; point = median, see heads.BinnedHead).
        timing_bins: bins per binned timing head.
        step_max, duration_max: upper edge of the step / duration bins in seconds (longer values fall
            in the last bin).
        pitch_embedding: 0 -> pitch enters as pitch/128 (tutorial); n > 0 -> a learned
            ``nn.Embedding(128, n)`` (pitches an octave apart need not be "close" numbers).
        velocity: model velocity as a 4th feature: velocity/127 is an input and a 32-bin head predicts
            it. Classification, not regression: dynamics are multi-modal (soft accompaniment vs loud
            melody), a softmax gives them a real distribution to sample from, and it has an NLL.
        composer_dim: 0 -> no conditioning; n > 0 -> an embedding of the composer id (0 = unknown)
            concatenated to every timestep's input. Its size is ``len(composers)``.
        composer_dropout: in training, replace the composer id by 0 (unknown) with this probability, so
            the "unknown" embedding learns "any composer" (MAESTRO has no unknown files otherwise) and
            sampling without a composer works.
        loss_on: "last" (the tutorial) or "all" positions.
        lr: Adam learning rate (tutorial: 0.005).
        weight_decay: Adam weight decay.
        scheduler: "plateau" (ReduceLROnPlateau on val/loss), "exponential", or "none".
        plateau_factor, plateau_patience: ReduceLROnPlateau settings.
        gamma: per-epoch decay of the exponential scheduler.
        composers: composer vocabulary (linked from the data by the CLI; kept for sampling).

    Logged per stage: loss, pitch_ce, pitch_acc/top5, step/duration[/velocity]_mae, and ``nll`` =
    pitch + step + duration [+ velocity] nats per note when every head has a likelihood (binned
    timing; the timing/velocity parts are discrete NLLs over their bins, see heads.BinnedHead).
    """

    def __init__(self, net: Callable[[int], Net] = LSTMNet, seq_length: int = 25, pitch_weight: float = 0.05,
                 step_weight: float = 1.0, duration_weight: float = 1.0, velocity_weight: float = 0.05,
                 pressure: float = 10.0, timing_head: str = "mse", timing_bins: int = 64, step_max: float = 4.0,
                 duration_max: float = 8.0, pitch_embedding: int = 0, velocity: bool = False,
                 composer_dim: int = 0, composer_dropout: float = 0.1, loss_on: str = "last", lr: float = 0.005,
                 weight_decay: float = 0.0, scheduler: str = "plateau", plateau_factor: float = 0.5,
                 plateau_patience: int = 2, gamma: float = 0.95, composers: list[str] | None = None):
        super().__init__()
        check_ranges("model", locals())
        if timing_head not in TIMING_HEADS:
            raise ConfigError(f"model.timing_head must be one of {TIMING_HEADS}, got {timing_head!r}")
        if scheduler not in SCHEDULERS:
            raise ConfigError(f"model.scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
        if loss_on not in ("last", "all"):
            raise ConfigError(f"model.loss_on must be 'last' or 'all', got {loss_on!r}")
        if pitch_embedding < 0 or composer_dim < 0:
            raise ConfigError("model.pitch_embedding and model.composer_dim must be >= 0 (0 = off)")
        self.save_hyperparameters(ignore=["net"])
        self.pitch_emb = nn.Embedding(128, pitch_embedding) if pitch_embedding else None
        self.composer_emb = nn.Embedding(max(1, len(composers or [])), composer_dim) if composer_dim else None
        self.input_size = (pitch_embedding or 1) + 2 + int(velocity) + composer_dim
        self.net = net(self.input_size)
        if loss_on == "all" and not self.net.causal:
            raise ConfigError(f"{type(self.net).__name__} is not causal: use model.loss_on 'last'")
        h = self.net.out_dim
        if timing_head == "mse":
            step, duration = PositivePressureHead(h, pressure), PositivePressureHead(h, pressure)
        else:
            step = BinnedHead(h, log_edges(step_max, timing_bins))
            duration = BinnedHead(h, log_edges(duration_max, timing_bins))
        self.heads = nn.ModuleDict({"pitch": PitchHead(h), "step": step, "duration": duration})
        if velocity:
            self.heads["velocity"] = BinnedHead(h, velocity_edges(32), log=False)
        self.weights = {"pitch": pitch_weight, "step": step_weight, "duration": duration_weight,
                        "velocity": velocity_weight}
        for stage in ("train", "val", "test"):  # one collection per stage: states must not mix
            metrics = {"pitch_acc": MulticlassAccuracy(128, top_k=1, average="micro"),
                       "pitch_top5": MulticlassAccuracy(128, top_k=5, average="micro"),
                       "step_mae": MeanAbsoluteError(), "duration_mae": MeanAbsoluteError()}
            if velocity:
                metrics["velocity_mae"] = MeanAbsoluteError()
            if stage == "train":  # see _shared_step: train pitch CE is averaged here, not by self.log
                metrics["pitch_ce"] = MeanMetric()
            setattr(self, f"{stage}_metrics", MetricCollection(metrics, prefix=f"{stage}/"))
        # whole-piece validation (every note, carried context): note-weighted means, exact under DDP
        self.piece_metrics = MetricCollection({"pitch_ce": MeanMetric(), "nll": MeanMetric()}, prefix="val_piece/")
        self._carry = {}  # stage -> recurrent state carried between whole-piece batches (truncated BPTT)

    # ---- model ---------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, composer: torch.Tensor | None = None) -> torch.Tensor:
        """Raw features (B, T, 4) -> network input (B, T, input_size).

        Columns: pitch/128 or pitch embedding (P), step and duration in seconds, [velocity/127],
        [composer embedding (C), the same at every timestep]. ``composer`` None means unknown (0).
        """
        hp = self.hparams
        if self.pitch_emb is not None:
            pitch = self.pitch_emb(x[..., 0].long().clamp(0, 127))  # (B, T, P)
        else:
            pitch = x[..., :1] / 128.0  # (B, T, 1)
        parts = [pitch, x[..., 1:3]]  # step, duration (B, T, 2)
        if hp.velocity:
            parts.append(x[..., 3:4] / 127.0)
        if self.composer_emb is not None:
            if composer is None:
                composer = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            composer = torch.as_tensor(composer, device=x.device).long().reshape(-1)
            if composer.numel() == 1 and x.shape[0] > 1:
                composer = composer.expand(x.shape[0])
            n = self.composer_emb.num_embeddings  # check user input (sampling); training ids come from the data
            if not self.training and (int(composer.max()) >= n or int(composer.min()) < 0):
                raise ConfigError(f"composer id out of range 0..{n - 1} "
                                  f"(0 = unknown); see model.hparams.composers")
            c = self.composer_emb(composer)  # (B, C)
            parts.append(c.unsqueeze(1).expand(-1, x.shape[1], -1))  # (B, T, C)
        return torch.cat(parts, dim=-1)

    def forward(self, x: torch.Tensor, composer: torch.Tensor | None = None, state=None):
        """x (B, T, 4) raw features -> ({head: out (B, T, ...)}, state)."""
        h, state = self.net(self.encode(x, composer), state)  # (B, T, H)
        return {name: head(h) for name, head in self.heads.items()}, state

    @torch.no_grad()
    def forward_step(self, x: torch.Tensor, composer: torch.Tensor | None = None, state=None):
        """One note per sample with carried state: x (B, 4) raw -> ({head: out (B, ...)}, state).

        The same as ``forward(x.unsqueeze(1), composer, state)`` at its only position, through
        ``stepper()`` when this model has a fast path (see there), else through ``forward``.
        """
        st = self.stepper() if state is not None else None
        if st is None:
            out, state = self(x.unsqueeze(1), composer, state)  # {head: (B, 1, ...)}
            return {k: v[:, 0] for k, v in out.items()}, state
        if composer is not None:
            composer = torch.as_tensor(composer, device=x.device).long().reshape(-1).expand(x.shape[0])
        out, cells = st(x, composer, st.cells(state))
        return out, st.state(cells)

    def stepper(self) -> "Stepper | None":
        """A ``Stepper`` computing ``forward`` for one timestep with carried state, or None when there
        is no fast path (a core other than the LSTM ones, custom heads, training mode). Build it once
        per run: it looks the weights up once (see ``Stepper`` for why)."""
        if self.training:
            return None
        core = _core_plan(self.net)
        if core is None:
            return None
        heads = []
        for name, head in self.heads.items():
            kind = type(head)
            if kind not in (PitchHead, BinnedHead, PositivePressureHead):  # forward is proj(h) [.squeeze(-1)]
                return None
            heads.append((name, head.proj.weight, head.proj.bias, kind is PositivePressureHead))
        return Stepper(self, *core, heads)

    @property
    def steppable(self) -> bool:
        """True when the core can be fed one note at a time with carried state (O(1) per note)."""
        return self.net.steppable

    def sample_next(self, out: dict, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Head outputs at one position {name: (B, ...)} -> the sampled next note, raw features (B, 4).

        Pitch from the tempered (top-k / top-p filtered) softmax; step and duration from their heads'
        samplers (MSE heads: the prediction clipped at 0, as the tutorial; binned heads: a tempered bin,
        then a value inside it; temperature 0 = median); velocity from its head (an integer 1..127)
        when modelled, else 100. Runs without autograd (a caller already in inference mode, as the
        sampling loop is, skips entering a context once per note).
        """
        if torch.is_grad_enabled():
            with torch.no_grad():
                return self.sample_next(out, temperature, top_k, top_p, generator)
        pitch, step, duration, velocity = self._sample_parts(out, temperature, top_k, top_p, generator)
        velocity = torch.full_like(step, DEFAULT_VELOCITY) if velocity is None else velocity.to(step.dtype)
        return torch.stack([pitch.to(step.dtype), step, duration, velocity], dim=-1)  # (B, 4)

    def sample_next_rows(self, out: dict, temperature: float = 1.0, top_k: int | None = None,
                         top_p: float | None = None, generator: torch.Generator | None = None) -> list[list[float]]:
        """``sample_next(...).tolist()`` (the same draws and values) without stacking tensors first: the
        sampling loop's bookkeeping for small CPU batches runs in Python floats (see generate)."""
        if torch.is_grad_enabled():
            with torch.no_grad():
                return self.sample_next_rows(out, temperature, top_k, top_p, generator)
        heads = self.heads
        pitch = heads["pitch"].sample(out["pitch"], temperature, generator, top_k=top_k, top_p=top_p)  # (B,)
        timing = []
        for name in ("step", "duration"):
            head = heads[name]
            # an MSE head samples its prediction clipped at 0: clipped here on floats (max(nan, 0.) is nan,
            # as clamp_min's); any other sampler's value is clipped the same way
            value = out[name] if type(head) is PositivePressureHead else head.sample(out[name], temperature, generator)
            timing.append([max(v, 0.0) for v in value.tolist()])
        if "velocity" in heads:
            velocity = heads["velocity"].sample(out["velocity"], temperature, generator).round().clamp(1, 127).tolist()
        else:
            velocity = [DEFAULT_VELOCITY] * len(timing[0])
        # float32 -> Python float is exact; pitch indices are small integers
        return [[float(p), s, d, v] for p, s, d, v in zip(pitch.tolist(), timing[0], timing[1], velocity)]

    def _sample_parts(self, out, temperature, top_k, top_p, generator):
        """(pitch (B,) long, step (B,), duration (B,), velocity (B,) or None) for ``sample_next``."""
        heads = self.heads
        pitch = heads["pitch"].sample(out["pitch"], temperature, generator, top_k=top_k, top_p=top_p)  # (B,)
        timing = []
        for name in ("step", "duration"):
            head = heads[name]
            value = head.sample(out[name], temperature, generator)  # (B,)
            timing.append(value if type(head) is PositivePressureHead else value.clamp_min(0.0))  # it clamps
        velocity = None
        if "velocity" in heads:
            velocity = heads["velocity"].sample(out["velocity"], temperature, generator).round().clamp(1, 127)
        return pitch, timing[0], timing[1], velocity

    # ---- training ------------------------------------------------------------------------------
    def compute_loss(self, batch, stage: str = "train"):
        """A batch -> (weighted loss, {head: loss}, {head: out}, {head: target}, mask or None).

        ``(window, composer)``: a window of the windowed regime. ``(chunk, composer, reset, mask)``: a
        whole-piece chunk (see ``pieces``): the core starts from the state carried from this stage's
        previous chunk (rows with ``reset`` from zero), loss on every masked-in position.
        """
        pieces = len(batch) == 4
        window, composer = batch[0], batch[1]  # (B, L+1, 4), (B,)
        if window.shape[1] < 2:
            raise ConfigError("windows need at least 2 notes")
        p = self.hparams.composer_dropout
        if self.training and self.composer_emb is not None and p > 0:
            composer = composer.masked_fill(torch.rand(composer.shape, device=composer.device) < p, 0)
        state, mask = None, None
        if pieces:
            reset, mask = batch[2], batch[3]
            carry = self._carry.get(stage)  # the first batch of an epoch resets every row
            if self.net.steppable and carry is not None:
                state = mask_state(carry, ~reset)
        out, state = self(window[:, :-1], composer, state)
        if pieces and self.net.steppable:
            self._carry[stage] = mask_state(state, torch.ones_like(batch[2]))  # detached
        if self.hparams.loss_on == "last" and not pieces:
            out = {k: v[:, -1] for k, v in out.items()}
            target = window[:, -1]  # (B, 4)
        else:
            target = window[:, 1:]  # (B, L, 4)
        tgt = {"pitch": target[..., 0].long(), "step": target[..., 1], "duration": target[..., 2],
               "velocity": target[..., 3]}
        if mask is None:
            losses = {k: self.heads[k].loss(out[k], tgt[k]) for k in self.heads}
        else:  # masked means of the per-note losses (padding carries no signal)
            n = mask.sum().clamp_min(1)
            losses = {k: (self.heads[k].elementwise_loss(out[k], tgt[k]) * mask).sum() / n for k in self.heads}
        loss = sum(self.weights[k] * losses[k] for k in losses)
        return loss, losses, out, tgt, mask

    def _piece_validation_step(self, batch) -> None:
        _, _, out, tgt, mask = self.compute_loss(batch, "val")
        n = mask.sum()
        if n == 0:
            return
        ce = self.heads["pitch"].elementwise_loss(out["pitch"], tgt["pitch"])  # (B, L)
        self.piece_metrics["val_piece/pitch_ce"].update(ce[mask])
        nlls = [self.heads[k].nll(out[k], tgt[k]) for k in self.heads]
        if all(v is not None for v in nlls):
            self.piece_metrics["val_piece/nll"].update(sum(v.reshape(mask.shape) for v in nlls)[mask])

    def _shared_step(self, batch, stage: str):
        loss, losses, out, tgt, mask = self.compute_loss(batch, stage)
        if mask is not None:  # whole-piece training: metrics over the real (masked-in) positions
            out = {k: v[mask] for k, v in out.items()}
            tgt = {k: v[mask] for k, v in tgt.items()}
        bs = batch[0].shape[0]
        sync = stage != "train"
        if stage == "train":
            # A self.log call costs Lightning ~1 ms of bookkeeping, >10 % of a CPU step of the baseline:
            # the step loss goes to the logger (and progress bar) only when the logger writes anyway,
            # and the epoch's pitch CE is a metric averaged in update() (see _log_epoch_metrics).
            trainer = self._trainer
            if trainer is not None and self.global_step % max(1, trainer.log_every_n_steps) == 0:
                self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=bs)
            self.train_metrics["train/pitch_ce"].update(losses["pitch"].detach())
        else:
            self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=bs, sync_dist=sync, add_dataloader_idx=False)
        if stage != "train" and self.hparams.loss_on == "all":
            # Report val/test metrics on the last position only: the tutorial's task (next note after a
            # full window), so models trained on "all" and on "last" are compared on the same thing.
            out = {k: v[:, -1] for k, v in out.items()}
            tgt = {k: v[:, -1] for k, v in tgt.items()}
            pitch_ce = self.heads["pitch"].loss(out["pitch"], tgt["pitch"])
        else:
            pitch_ce = losses["pitch"]
        if stage != "train":
            self.log(f"{stage}/pitch_ce", pitch_ce, batch_size=bs, sync_dist=sync, add_dataloader_idx=False)
            nlls = [self.heads[k].nll(out[k], tgt[k]) for k in self.heads]
            if all(n is not None for n in nlls):  # per-note NLL in nats: sum over heads, mean over notes
                self.log(f"{stage}/nll", sum(n.mean() for n in nlls), batch_size=bs, sync_dist=sync, add_dataloader_idx=False)
        m = getattr(self, f"{stage}_metrics")
        # update() only: logging a MetricCollection every step costs Lightning ~30% of a CPU step,
        # so the epoch value is computed and logged once, in _log_epoch_metrics.
        m[f"{stage}/pitch_acc"].update(out["pitch"].reshape(-1, 128), tgt["pitch"].reshape(-1))
        m[f"{stage}/pitch_top5"].update(out["pitch"].reshape(-1, 128), tgt["pitch"].reshape(-1))
        for k in ("step", "duration", "velocity"):
            if k in self.heads:
                point = self.heads[k].point(out[k])
                if k == "velocity":
                    point = point.round().clamp(1, 127)
                m[f"{stage}/{k}_mae"].update(point.reshape(-1), tgt[k].reshape(-1))
        return loss

    def _log_epoch_metrics(self, stage: str) -> None:
        m = getattr(self, f"{stage}_metrics")
        if any(metric.update_count == 0 for metric in m.values()):
            return  # nothing seen this epoch (e.g. a resumed run at an epoch boundary)
        self.log_dict(m.compute(), sync_dist=stage != "train")
        m.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")
        pm = self.piece_metrics
        if pm["val_piece/pitch_ce"].update_count:
            self.log_dict({k: v for k, v in pm.compute().items()
                           if k != "val_piece/nll" or pm["val_piece/nll"].update_count}, sync_dist=True)
        pm.reset()

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        if len(batch) == 4:
            self._piece_validation_step(batch)
        else:
            self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test")

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=hp.plateau_factor,
                                                               patience=hp.plateau_patience)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss",
                                                       "strict": False}}
        if hp.scheduler == "exponential":
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(opt, hp.gamma)}
        return opt

    # ---- checkpoint: enough to sample with no config and no data -------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["musicrnn"] = {"format": CHECKPOINT_FORMAT, "net": self.net.config(),
                                  "hparams": dict(self.hparams)}
        if self._carry.get("train") is not None:  # whole-piece training: resume mid-epoch with the same state
            checkpoint["musicrnn_carry"] = self._carry["train"]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if checkpoint.get("musicrnn_carry") is not None:
            self._carry["train"] = checkpoint["musicrnn_carry"]


def load_model(path, map_location: str | torch.device = "cpu") -> MusicModel:
    """Rebuild a trained model from a checkpoint alone (no config, no data), loading weights only.

    Raises CheckpointError (one clear line) for a missing, truncated, unsafe or foreign checkpoint.
    """
    import os

    from .nets import build_net

    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder, not a checkpoint — pass --ckpt {os.path.join(path, 'last.ckpt')} "
                              f"(or another .ckpt in it)")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint — pass --ckpt PATH to a .ckpt written by musicrnn.fit "
                              f"(e.g. checkpoints/last.ckpt)")
    ckpt = load_checkpoint_dict(path, map_location)
    info = ckpt.get("musicrnn") if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or "net" not in info:
        raise CheckpointError(f"{path}: not a musicrnn checkpoint (no 'musicrnn' section) — "
                              f"use a checkpoint written by `python -m musicrnn.fit`")
    if info.get("format", 0) > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {info['format']} is newer than this musicrnn "
                              f"({CHECKPOINT_FORMAT}) — upgrade musicrnn")
    hp = {k: v for k, v in info["hparams"].items() if not k.startswith("_")}
    try:
        model = MusicModel(net=lambda d: build_net(info["net"], d), **hp)
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (TypeError, RuntimeError, KeyError) as e:
        raise CheckpointError(f"{path}: weights do not match the recorded model "
                              f"({str(e).splitlines()[0][:160]}) — the checkpoint is damaged or from another version")
    # how the data was prepared (e.g. sustain), so evaluation can window new data the same way
    model.data_hparams = {k: v for k, v in (ckpt.get("datamodule_hyper_parameters") or {}).items()
                          if not k.startswith("_")}
    return model.eval()
