"""Weight averaging (an exponential moving average of the weights) through Lightning's own callback.

``WeightAveraging`` keeps the averaged copy, swaps it in for validation and at the end of training,
and saves it as the checkpoint's ``state_dict`` (the raw weights go to ``current_model_state``), so
sampling and evaluation see the averaged network with no extra code. This subclass only makes the
decay and the first step YAML-settable::

    trainer:
      callbacks:
        - class_path: musicrnn.training.ema.EMA
          init_args: {decay: 0.999}
"""
from __future__ import annotations

from lightning.pytorch.callbacks import WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn

from musicrnn.errors import ConfigError


class EMA(WeightAveraging):
    """EMA of the weights: ``avg = decay * avg + (1 - decay) * w`` after every step from ``start_step``."""

    def __init__(self, decay: float = 0.999, start_step: int = 0):
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"EMA decay must be in (0, 1), got {decay}")
        if start_step < 0:
            raise ConfigError(f"EMA start_step must be >= 0, got {start_step}")
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.decay, self.start_step = decay, start_step

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None and step_idx >= self.start_step
