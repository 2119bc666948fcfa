"""TensorBoard's HPARAMS panel with a real metric, and a train loss even in short epochs.

``BestMetricHParams``: Lightning's TensorBoardLogger would write a placeholder ``hp_metric = -1`` at
the start of a run and never update it; ``fit`` turns that off (``default_hp_metric: false``) and this
callback declares the metric once training starts and logs the best ``val/pitch_ce`` after every
validation (kept across a resume, with the logger's version folder, so a resumed run continues it).
The table shows the options that shape the result: not Lightning's ``_instantiator`` nor where the
cache lives or how many processes read it.

``LogShortEpochs``: Lightning writes step metrics every ``log_every_n_steps`` steps; a run with fewer
training batches than that would log no train loss at all, so the interval is lowered to the epoch.
"""
from __future__ import annotations

import math

import lightning as L
from lightning.pytorch.callbacks import Callback

NOT_RESULTS = ("cache_dir", "jobs", "num_workers")  # where and how fast, not what is learned


def shown_hparams(params: dict) -> dict:
    return {k: v for k, v in params.items() if not k.startswith("_") and k not in NOT_RESULTS}


class BestMetricHParams(Callback):
    def __init__(self, monitor: str = "val/pitch_ce") -> None:
        self.monitor = monitor
        self.best: float | None = None
        self._log: tuple[str, int | str] | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.logger is None:
            return
        self._log = (trainer.logger.name, trainer.logger.version)
        params = dict(trainer.datamodule.hparams) if trainer.datamodule is not None else {}
        params.update(pl_module.hparams)
        trainer.logger.log_hyperparams(shown_hparams(params),
                                       {"hp_metric": self.best if self.best is not None else math.nan})

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None or not math.isfinite(float(value)):
            return
        self.best = float(value) if self.best is None else min(self.best, float(value))
        if trainer.logger is not None:
            trainer.logger.log_metrics({"hp_metric": self.best}, step=trainer.global_step)

    def state_dict(self) -> dict:
        state = {} if self.best is None else {"best": self.best}
        if self._log is not None:
            state["log_name"], state["log_version"] = self._log
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")


class LogShortEpochs(Callback):
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or trainer.datamodule is None:
            return
        try:
            batches = len(trainer.datamodule.train_dataloader())
        except TypeError:  # no length: nothing to compare
            return
        limit = trainer.limit_train_batches
        if isinstance(limit, int):
            batches = min(batches, limit)
        elif isinstance(limit, float):
            batches = int(batches * limit)
        if 0 < batches < trainer.log_every_n_steps:
            trainer.log_every_n_steps = batches
