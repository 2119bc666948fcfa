"""TensorBoard's HPARAMS panel with a real metric: ``hp_metric`` = the best ``val/pitch_ce`` so far.

Lightning's TensorBoardLogger would write a placeholder ``hp_metric = -1`` at the start of a run and
never update it; ``fit`` turns that off (``default_hp_metric: false``) and this callback declares the
metric once training starts and logs the best value after every validation (kept across a resume).
"""
from __future__ import annotations

import math

import lightning as L
from lightning.pytorch.callbacks import Callback


class BestMetricHParams(Callback):
    def __init__(self, monitor: str = "val/pitch_ce") -> None:
        self.monitor = monitor
        self.best: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.logger is None:
            return
        params = dict(trainer.datamodule.hparams) if trainer.datamodule is not None else {}
        params.update(pl_module.hparams)
        trainer.logger.log_hyperparams(params, {"hp_metric": self.best if self.best is not None else math.nan})

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None or not math.isfinite(float(value)):
            return
        self.best = float(value) if self.best is None else min(self.best, float(value))
        if trainer.logger is not None:
            trainer.logger.log_metrics({"hp_metric": self.best}, step=trainer.global_step)

    def state_dict(self) -> dict:
        return {} if self.best is None else {"best": self.best}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")
