"""Sequence cores: plain ``nn.Module``s that know nothing of MIDI or Lightning.

Every core has one interface, shared by training and stateful sampling::

    forward(x: (B, T, input_size), state=None) -> (h: (B, T, out_dim), state)

``state`` is whatever the core carries between calls (LSTM (h, c) tuples); feeding a window in one
call or one note at a time with the returned state gives the same ``h``. Cores that cannot be stepped
(``steppable = False``, e.g. bidirectional) are re-run over the whole window when sampling. ``causal``
says whether ``h[:, t]`` depends only on ``x[:, :t+1]`` (required to train on every position).

Cores are chosen in YAML by ``class_path``; ``input_size`` is supplied by the model (it depends on
the feature set), every other argument comes from ``init_args``.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn


class Net(nn.Module):
    """Base class: records its init args so a checkpoint can rebuild it without the config."""

    steppable: bool = True
    causal: bool = True
    out_dim: int

    def _record(self, args: dict[str, Any]) -> None:
        sig = inspect.signature(type(self).__init__)
        self.init_args = {k: args[k] for k in sig.parameters if k not in ("self", "input_size")}

    def config(self) -> dict:
        """{'class_path': ..., 'init_args': ...}: what ``build_net`` needs to rebuild this core."""
        return {"class_path": f"{type(self).__module__}.{type(self).__qualname__}", "init_args": dict(self.init_args)}


class LSTMNet(Net):
    """The tutorial's core: an LSTM (one layer of 128 by default); ``num_layers`` > 1 stacks equal layers."""

    def __init__(self, input_size: int, hidden_size: int = 128, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self._record(locals())
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.out_dim = hidden_size

    def forward(self, x: torch.Tensor, state=None):
        h, state = self.lstm(x, state)  # (B, T, H), ((L, B, H), (L, B, H))
        return h, state


def build_net(spec: dict, input_size: int) -> Net:
    """Rebuild a core from ``Net.config()``; only classes of musicrnn.nets are allowed (safe loading)."""
    path = spec.get("class_path", "")
    module, _, name = path.rpartition(".")
    cls = globals().get(name) if module == __name__ else None
    if not (isinstance(cls, type) and issubclass(cls, Net)):
        from .errors import CheckpointError

        raise CheckpointError(f"unknown network class {path!r} — this checkpoint needs a newer musicrnn")
    return cls(input_size, **spec.get("init_args", {}))
