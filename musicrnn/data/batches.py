"""The two kinds of batch the data module hands the model; each says which training regime it belongs to.

The batch types are NamedTuples, so DataLoader collation, Lightning's device transfer and tuple
unpacking keep them intact, and the model decides how to train on a batch from ``batch.regime``
alone (never from its length).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

REGIMES = ("windows", "pieces")


class WindowBatch(NamedTuple):
    """Windows of the windowed regime (and of window evaluation): ``window`` (B, L+1, 4) raw features
    pitch, step, duration, velocity; ``composer`` (B,) composer ids. One item is the same with no B."""

    window: torch.Tensor
    composer: torch.Tensor

    @property
    def regime(self) -> str:
        return "windows"


class PieceBatch(NamedTuple):
    """Consecutive chunks of whole files (``data.pieces``): ``chunk`` (B, L+1, 4), ``composer`` (B,),
    ``reset`` (B,) bool: the row starts a file or a stream (its carried state starts from zero),
    ``mask`` (B, L) bool: the real targets (padding is False)."""

    chunk: torch.Tensor
    composer: torch.Tensor
    reset: torch.Tensor
    mask: torch.Tensor

    @property
    def regime(self) -> str:
        return "pieces"

    @property
    def window(self) -> torch.Tensor:  # the same name as a window batch's notes: both are (B, L+1, 4)
        return self.chunk
