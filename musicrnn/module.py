"""``MusicModel``: the LightningModule. It owns input encoding, loss, metrics, logging and optimisers;
the sequence core (``nets``) and output heads (``heads``) are plain modules it composes.

A batch is ``(window, composer)``: window (B, L+1, 4) raw features pitch, step, duration, velocity.
Inputs are the first L rows, encoded like the tutorial (pitch / 128, step and duration in seconds);
the target is row L (``loss_on="last"``, the tutorial) or rows 1..L (``loss_on="all"``: every
position predicts its next note, many more training signals per window; causal cores only).
"""
from __future__ import annotations

from typing import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from .errors import ConfigError
from .heads import PitchHead, PositivePressureHead
from .nets import LSTMNet, Net

CHECKPOINT_FORMAT = 1
TIMING_HEADS = ("mse",)
SCHEDULERS = ("plateau", "exponential", "none")


class MusicModel(L.LightningModule):
    """Next-note model: encoder -> core -> pitch / step / duration heads.

    Args:
        net: the sequence core, chosen by ``class_path``; called with the encoded input size.
        seq_length: context notes per window (linked from ``data.seq_length`` by the CLI).
        pitch_weight, step_weight, duration_weight: loss weights (tutorial: 0.05, 1, 1).
        pressure: weight of the positive-pressure term of the step/duration MSE heads.
        timing_head: "mse" (the tutorial's regression).
        loss_on: "last" (the tutorial) or "all" positions.
        lr: Adam learning rate (tutorial: 0.005).
        weight_decay: Adam weight decay.
        scheduler: "plateau" (ReduceLROnPlateau on val/loss), "exponential", or "none".
        plateau_factor, plateau_patience: ReduceLROnPlateau settings.
        gamma: per-epoch decay of the exponential scheduler.
        composers: composer vocabulary (linked from the data by the CLI; kept for sampling).
    """

    def __init__(self, net: Callable[[int], Net] = LSTMNet, seq_length: int = 25, pitch_weight: float = 0.05,
                 step_weight: float = 1.0, duration_weight: float = 1.0, pressure: float = 10.0,
                 timing_head: str = "mse", loss_on: str = "last", lr: float = 0.005, weight_decay: float = 0.0,
                 scheduler: str = "plateau", plateau_factor: float = 0.5, plateau_patience: int = 2,
                 gamma: float = 0.95, composers: list[str] | None = None):
        super().__init__()
        if timing_head not in TIMING_HEADS:
            raise ConfigError(f"model.timing_head must be one of {TIMING_HEADS}, got {timing_head!r}")
        if scheduler not in SCHEDULERS:
            raise ConfigError(f"model.scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
        if loss_on not in ("last", "all"):
            raise ConfigError(f"model.loss_on must be 'last' or 'all', got {loss_on!r}")
        self.save_hyperparameters(ignore=["net"])
        self.input_size = 3
        self.net = net(self.input_size)
        if loss_on == "all" and not self.net.causal:
            raise ConfigError(f"{type(self.net).__name__} is not causal: use model.loss_on 'last'")
        h = self.net.out_dim
        self.heads = nn.ModuleDict({
            "pitch": PitchHead(h),
            "step": PositivePressureHead(h, pressure),
            "duration": PositivePressureHead(h, pressure),
        })
        self.weights = {"pitch": pitch_weight, "step": step_weight, "duration": duration_weight}
        for stage in ("train", "val", "test"):  # one collection per stage: states must not mix
            setattr(self, f"{stage}_metrics", MetricCollection({
                "pitch_acc": MulticlassAccuracy(128, top_k=1, average="micro"),
                "pitch_top5": MulticlassAccuracy(128, top_k=5, average="micro"),
                "step_mae": MeanAbsoluteError(),
                "duration_mae": MeanAbsoluteError(),
            }, prefix=f"{stage}/"))

    # ---- model ---------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, composer: torch.Tensor | None = None) -> torch.Tensor:
        """Raw features (B, T, 4) -> network input (B, T, input_size): pitch/128, step, duration."""
        return torch.stack([x[..., 0] / 128.0, x[..., 1], x[..., 2]], dim=-1)

    def forward(self, x: torch.Tensor, composer: torch.Tensor | None = None, state=None):
        """x (B, T, 4) raw features -> ({head: out (B, T, ...)}, state)."""
        h, state = self.net(self.encode(x, composer), state)  # (B, T, H)
        return {name: head(h) for name, head in self.heads.items()}, state

    @property
    def steppable(self) -> bool:
        """True when the core can be fed one note at a time with carried state (O(1) per note)."""
        return self.net.steppable

    @torch.no_grad()
    def sample_next(self, out: dict, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Head outputs at one position {name: (B, ...)} -> the sampled next note, raw features (B, 4).

        Pitch from the tempered (top-k / top-p filtered) softmax; step and duration from their heads'
        samplers (the MSE heads return their prediction clipped at 0, as the tutorial); velocity 100.
        """
        pitch = self.heads["pitch"].sample(out["pitch"], temperature, generator, top_k=top_k, top_p=top_p)
        step = self.heads["step"].sample(out["step"], temperature, generator)
        duration = self.heads["duration"].sample(out["duration"], temperature, generator)
        velocity = torch.full_like(step, 100.0)
        return torch.stack([pitch.to(step.dtype), step, duration, velocity], dim=-1)

    # ---- training ------------------------------------------------------------------------------
    def _shared_step(self, batch, stage: str):
        window, composer = batch  # (B, L+1, 4), (B,)
        if window.shape[1] < 2:
            raise ConfigError("windows need at least 2 notes")
        out, _ = self(window[:, :-1], composer)
        if self.hparams.loss_on == "last":
            out = {k: v[:, -1] for k, v in out.items()}
            target = window[:, -1]  # (B, 4)
        else:
            target = window[:, 1:]  # (B, L, 4)
        tgt = {"pitch": target[..., 0].long(), "step": target[..., 1], "duration": target[..., 2]}
        losses = {k: self.heads[k].loss(out[k], tgt[k]) for k in self.heads}
        loss = sum(self.weights[k] * losses[k] for k in losses)
        bs = window.shape[0]
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=bs, sync_dist=stage != "train")
        self.log(f"{stage}/pitch_ce", losses["pitch"], batch_size=bs, sync_dist=stage != "train")
        m = getattr(self, f"{stage}_metrics")
        m[f"{stage}/pitch_acc"](out["pitch"].reshape(-1, 128), tgt["pitch"].reshape(-1))
        m[f"{stage}/pitch_top5"](out["pitch"].reshape(-1, 128), tgt["pitch"].reshape(-1))
        m[f"{stage}/step_mae"](self.heads["step"].point(out["step"]).reshape(-1), tgt["step"].reshape(-1))
        m[f"{stage}/duration_mae"](self.heads["duration"].point(out["duration"]).reshape(-1),
                                   tgt["duration"].reshape(-1))
        self.log_dict(m, batch_size=bs, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
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


def load_model(path, map_location: str | torch.device = "cpu") -> MusicModel:
    """Rebuild a trained model from a checkpoint alone (no config, no data), loading weights only.

    Raises CheckpointError (one clear line) for a missing, truncated, unsafe or foreign checkpoint.
    """
    import os
    import pickle
    import zipfile

    from .errors import CheckpointError
    from .nets import build_net

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint — pass --ckpt PATH to a .ckpt written by musicrnn.fit "
                              f"(e.g. checkpoints/last.ckpt)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: refused — it needs arbitrary code to load ({str(e).splitlines()[0][:120]}); "
                              f"only load checkpoints you trust, and re-save them with musicrnn") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or not a torch file: "
                              f"{str(e).splitlines()[0][:120]}) — use checkpoints/last.ckpt or re-train") from None
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
    return model.eval()
