"""The optimiser and learning-rate schedule of ``MusicModel``; the warm-up + cosine schedule decays to the
end of the run's own budget.

A fixed-length schedule needs to know where the end is. A musicrnn run is usually bounded by time
(``--trainer.max_time``) rather than by steps, so progress is the larger of the step fraction
(``max_steps``, or ``max_epochs`` x batches per epoch) and the time fraction of Lightning's ``Timer``
(which is saved in checkpoints, so a resumed run continues the same curve), or of any callback with a
``budget_fraction()`` (``training.budget.CpuTimeBudget``: a budget in CPU time). Under DDP the time
fraction is rank 0's, broadcast, so every rank steps with the same learning rate.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from lightning.pytorch.callbacks import Timer


def cosine_factor(step: int, progress: float, warmup_steps: int, min_lr_ratio: float) -> float:
    """Multiplier of the base learning rate: linear warm-up over ``warmup_steps``, then a half cosine
    from 1 at progress 0 to ``min_lr_ratio`` at progress 1 (held there after the end)."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    p = min(max(progress, 0.0), 1.0)
    return warm * (min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p)))


def training_progress(trainer, step: int) -> float:
    """How far through its budget a run is (0..1): the larger of the step and the time fraction."""
    fractions = [0.0]
    if trainer.max_steps and trainer.max_steps > 0:
        fractions.append(step / trainer.max_steps)
    elif trainer.max_epochs and trainer.max_epochs > 0 and trainer.num_training_batches not in (None, float("inf")):
        fractions.append(step / max(1.0, trainer.max_epochs * trainer.num_training_batches))
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is not None and timer.time_remaining() is not None:
        elapsed = timer.time_elapsed()
        fractions.append(elapsed / max(1e-9, elapsed + timer.time_remaining()))
    fractions += [c.budget_fraction() for c in trainer.callbacks if hasattr(c, "budget_fraction")]
    progress = max(fractions)
    if trainer.world_size > 1:
        progress = float(trainer.strategy.broadcast(progress))
    return progress


def optimizer_and_schedule(params, hp, get_trainer: Callable):
    """Adam (AdamW with ``decoupled_weight_decay``) and the scheduler ``hp.scheduler`` names, in the form
    ``LightningModule.configure_optimizers`` returns. ``get_trainer()``: the trainer or None (cosine)."""
    opt = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay,
                           decoupled_weight_decay=hp.decoupled_weight_decay)
    if hp.scheduler == "cosine":
        def factor(step: int) -> float:  # a plain function: LambdaLR saves no state for it
            trainer = get_trainer()
            progress = training_progress(trainer, step) if trainer is not None else 0.0
            return cosine_factor(step, progress, hp.warmup_steps, hp.min_lr_ratio)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
    if hp.scheduler == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=hp.plateau_factor, patience=hp.plateau_patience)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss", "strict": False}}
    if hp.scheduler == "exponential":
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(opt, hp.gamma)}
    return opt
