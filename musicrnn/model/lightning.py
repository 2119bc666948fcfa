"""``MusicModel``: the LightningModule. It wraps the plain network (``network.MusicNet``: encoding,
core, heads) and owns only what training needs: loss weights, torchmetrics, logging, optimisers.

A batch is ``(window, composer)``: window (B, L+1, 4) raw features pitch, step, duration, velocity.
Inputs are the first L rows; the target is row L (``loss_on="last"``, the tutorial) or rows 1..L
(``loss_on="all"``: every position predicts its next note, many more training signals per window;
causal cores only). A whole-piece batch (``data.pieces``) is ``(chunk, composer, reset, mask)``.
"""
from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from torchmetrics import MeanAbsoluteError, MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from musicrnn.data.batches import PieceBatch, WindowBatch
from musicrnn.data.pieces import mask_state
from musicrnn.data.resumable import per_rank, this_rank
from musicrnn.errors import ConfigError
from musicrnn.model.checkpoint import CHECKPOINT_FORMAT, load_initial_weights, training_state_dict
from musicrnn.model.cores import LSTMNet, Net
from musicrnn.model.network import MusicNet
from musicrnn.model.schedule import optimizer_and_schedule
from musicrnn.ranges import check_ranges

SCHEDULERS = ("plateau", "exponential", "cosine", "none")


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
        weight_decay: Adam weight decay; ``decoupled_weight_decay`` makes it AdamW's (decay the weights
            directly instead of adding an L2 gradient that Adam's scaling then weakens).
        scheduler: "plateau" (ReduceLROnPlateau on val/loss), "exponential", "cosine" (linear warm-up
            over ``warmup_steps``, then a half cosine to ``min_lr_ratio`` x lr at the end of the run's
            budget: max_steps, max_epochs or max_time, see ``model.schedule``), or "none".
        dropout: dropout on the core's output before the heads (training only).
        cache_size, cache_theta, cache_lambda, cache_learn: the memory of the piece, a pointer over the
            last ``cache_size`` hidden states (0 = off; see ``model.memory.PitchCache``).
        init_weights: start from the network weights of this checkpoint ("pretrained" = the packaged
            model) instead of random ones: fine-tuning. The architecture must match; only the weights of
            a learned memory the checkpoint lacks start fresh.
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
                 plateau_patience: int = 2, gamma: float = 0.95, composers: list[str] | None = None,
                 decoupled_weight_decay: bool = False, warmup_steps: int = 200, min_lr_ratio: float = 0.02,
                 dropout: float = 0.0, cache_size: int = 0, cache_theta: float = 1.0, cache_lambda: float = 0.1,
                 cache_learn: bool = False, init_weights: str | None = None):
        super().__init__()
        check_ranges("model", locals())  # every numeric option, before anything is built
        if scheduler not in SCHEDULERS:
            raise ConfigError(f"model.scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
        if loss_on not in ("last", "all"):
            raise ConfigError(f"model.loss_on must be 'last' or 'all', got {loss_on!r}")
        self.save_hyperparameters(ignore=["net"])
        hp = self.hparams
        self.network = MusicNet(net, **{k: hp[k] for k in MusicNet.hparam_names()})
        if init_weights:
            load_initial_weights(self.network, init_weights)
        if loss_on == "all" and not self.network.core.causal:
            raise ConfigError(f"{type(self.network.core).__name__} is not causal: use model.loss_on 'last'")
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

    @classmethod
    def wrap(cls, network: MusicNet, **hparams) -> MusicModel:
        """A MusicModel around an existing (e.g. loaded) network; ``hparams``: the training ones."""
        model = cls(net=lambda _: network.core, **{**hparams, **network.hparams})
        model.network = network
        return model

    @property
    def heads(self):
        return self.network.heads

    def forward(self, x: torch.Tensor, composer: torch.Tensor | None = None, state=None):
        """x (B, T, 4) raw features -> ({head: out (B, T, ...)}, state) (``MusicNet.forward``)."""
        return self.network(x, composer, state)

    # ---- training ------------------------------------------------------------------------------
    def compute_loss(self, batch: WindowBatch | PieceBatch, stage: str = "train"):
        """A typed batch -> (weighted loss, {head: loss}, {head: out}, {head: target}, mask or None).

        ``WindowBatch``: windows of the windowed regime. ``PieceBatch``: a whole-piece chunk (see
        ``pieces``): the core starts from the state carried from this stage's previous chunk (rows with
        ``reset`` from zero), loss on every masked-in position.
        """
        pieces = batch.regime == "pieces"
        window, composer = batch.window, batch.composer  # (B, L+1, 4), (B,)
        if window.shape[1] < 2:
            raise ConfigError("windows need at least 2 notes")
        if pieces and stage == "train" and self.hparams.loss_on == "last":
            raise ConfigError("whole-piece training (data.regime pieces) predicts every note of a chunk, but "
                              "model.loss_on is 'last' — set --model.loss_on all")
        p = self.hparams.composer_dropout
        if self.training and self.network.composer_emb is not None and p > 0:
            composer = composer.masked_fill(torch.rand(composer.shape, device=composer.device) < p, 0)
        state, mask = None, None
        if pieces:
            mask = batch.mask
            carry = self._carry.get(stage)  # the first batch of an epoch resets every row
            if self.network.core.steppable and carry is not None:
                state = mask_state(carry, ~batch.reset)
        out, state = self(window[:, :-1], composer, state)
        if pieces and self.network.core.steppable:
            self._carry[stage] = mask_state(state)  # detached
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

    @property
    def loss_name(self) -> str:
        """What the weighted loss is, for the logger's chart name: recipes with different losses (the
        tutorial's weighted MSE, a per-note NLL) must not share a chart. ``loss_nll`` when every head is a
        likelihood with weight 1, else the weights and the timing head, e.g. ``loss_pitch0.05_step1_duration1_mse``."""
        weights = {k: self.weights[k] for k in self.heads}
        if self.hparams.timing_head == "binned" and all(w == 1 for w in weights.values()):
            return "loss_nll"
        return "loss_" + "_".join(f"{k}{w:g}" for k, w in weights.items()) + f"_{self.hparams.timing_head}"

    def _piece_validation_step(self, batch: PieceBatch) -> None:
        # every rank updates on every batch, empty or not: compute() then syncs on every rank (DDP)
        _, _, out, tgt, mask = self.compute_loss(batch, "val")
        ce = self.heads["pitch"].elementwise_loss(out["pitch"], tgt["pitch"])  # (B, L)
        self.piece_metrics["val_piece/pitch_ce"].update(ce[mask])
        nlls = [self.heads[k].nll(out[k], tgt[k]) for k in self.heads]
        if all(v is not None for v in nlls):
            self.piece_metrics["val_piece/nll"].update(sum(v.reshape(mask.shape) for v in nlls)[mask])

    def _shared_step(self, batch: WindowBatch | PieceBatch, stage: str):
        loss, losses, out, tgt, mask = self.compute_loss(batch, stage)
        if mask is not None:  # whole-piece training: metrics over the real (masked-in) positions
            out = {k: v[mask] for k, v in out.items()}
            tgt = {k: v[mask] for k, v in tgt.items()}
        bs = batch.window.shape[0]
        sync = stage != "train"
        if stage == "train":
            # A self.log call costs Lightning ~1 ms of bookkeeping, >10 % of a CPU step of the baseline:
            # the step loss goes to the logger (and progress bar) only at the steps the logger writes
            # (Lightning writes after step n when n is a multiple of log_every_n_steps), and the epoch's
            # pitch CE is a metric averaged in update() (see _log_epoch_metrics).
            trainer = self._trainer
            if trainer is not None and (self.global_step + 1) % max(1, trainer.log_every_n_steps) == 0:
                self.log(f"train/{self.loss_name}", loss, on_step=True, on_epoch=False, batch_size=bs)
                self.log("train/loss", loss, prog_bar=True, logger=False, on_step=True, on_epoch=False,
                         batch_size=bs)
            self.train_metrics["train/pitch_ce"].update(losses["pitch"].detach())
        else:
            # val/loss drives checkpoints, early stopping and the scheduler; the chart carries the loss's name
            self.log(f"{stage}/loss", loss, prog_bar=True, logger=False, batch_size=bs, sync_dist=sync,
                     add_dataloader_idx=False)
            self.log(f"{stage}/{self.loss_name}", loss, batch_size=bs, sync_dist=sync, add_dataloader_idx=False)
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
                self.log(f"{stage}/nll", sum(n.mean() for n in nlls), batch_size=bs, sync_dist=sync,
                         add_dataloader_idx=False)
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
            return  # nothing seen this epoch (e.g. a resumed run at an epoch boundary; the same on every rank)
        # torchmetrics' compute() syncs across ranks already: sync_dist averages equal values (no warning)
        self.log_dict(m.compute(), sync_dist=True)
        m.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")
        pm = self.piece_metrics
        # updated on every rank or on none (see _piece_validation_step); compute() syncs across ranks,
        # so a nan (no rank saw a note) is the same on every rank
        values = {k: metric.compute() for k, metric in pm.items() if metric.update_count}
        self.log_dict({k: v for k, v in values.items() if torch.isfinite(v)}, sync_dist=True)
        pm.reset()

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    def training_step(self, batch: WindowBatch | PieceBatch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch: WindowBatch | PieceBatch, batch_idx, dataloader_idx: int = 0):
        if batch.regime == "pieces":
            self._piece_validation_step(batch)
        else:
            self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test")

    def configure_optimizers(self):
        return optimizer_and_schedule(self.parameters(), self.hparams, lambda: self._trainer)

    # ---- checkpoint: enough to sample with no config and no data (see model.checkpoint) --------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["musicrnn"] = {"format": CHECKPOINT_FORMAT, "net": self.network.core.config(),
                                  "hparams": dict(self.hparams)}
        if self._carry.get("train") is not None:  # whole-piece training: resume mid-epoch with the same state
            checkpoint["musicrnn_carry"] = self._carry["train"]
            # DDP: each rank carries its own streams' state (every rank saves, so the gather is collective)
            checkpoint["musicrnn_carry_per_rank"] = per_rank(move_data_to_device(self._carry["train"], "cpu"))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "musicrnn" in checkpoint:  # an older format resumes too: its weights under today's names
            checkpoint["state_dict"] = training_state_dict(checkpoint)
            checkpoint["musicrnn"]["format"] = CHECKPOINT_FORMAT
        if checkpoint.get("musicrnn_carry_per_rank") is not None:
            self._carry["train"] = move_data_to_device(this_rank(checkpoint["musicrnn_carry_per_rank"]), self.device)
        elif checkpoint.get("musicrnn_carry") is not None:
            self._carry["train"] = checkpoint["musicrnn_carry"]
