"""A training budget in CPU seconds: the fair clock on a shared machine.

``--trainer.max_time`` counts wall time, so two runs given "12 minutes" on a busy machine train for
very different amounts; a 12-minute row is only comparable with another when both had their cores.
``CpuTimeBudget`` stops training when the process has used ``minutes`` of CPU time (one thread: CPU
time = the time a quiet machine would take), and saves what it has used in checkpoints so a resumed
run continues the same budget. The cosine schedule (``model.schedule``) reads ``budget_fraction``::

    trainer:
      callbacks:
        - class_path: musicrnn.training.budget.CpuTimeBudget
          init_args: {minutes: 12}
"""
from __future__ import annotations

import time

from lightning.pytorch.callbacks import Callback

from musicrnn.errors import ConfigError


class CpuTimeBudget(Callback):
    """Stop training after ``minutes`` of this process's CPU time (checked after every batch)."""

    def __init__(self, minutes: float = 12.0):
        if not minutes > 0:
            raise ConfigError(f"CpuTimeBudget minutes must be > 0, got {minutes}")
        self.minutes = float(minutes)
        self._offset = 0.0  # CPU seconds used before this process (a resumed run)
        self._start: float | None = None

    def used_seconds(self) -> float:
        return self._offset + (time.process_time() - self._start if self._start is not None else 0.0)

    def budget_fraction(self) -> float:
        return self.used_seconds() / (self.minutes * 60.0)

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.process_time()

    def on_train_batch_end(self, trainer, *args, **kwargs) -> None:
        stop = self.budget_fraction() >= 1.0
        trainer.should_stop = trainer.should_stop or bool(trainer.strategy.broadcast(stop))

    def state_dict(self) -> dict:
        return {"cpu_seconds": self.used_seconds()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._offset = float(state_dict.get("cpu_seconds", 0.0))
