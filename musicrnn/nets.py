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
import math
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
        self.init_args = {k: list(args[k]) if isinstance(args[k], (list, tuple)) else args[k]
                          for k in sig.parameters if k not in ("self", "input_size")}  # copies, plain types
        from .ranges import check_ranges  # lazy: nets imports nothing of the package at load time

        check_ranges("model.net.init_args", self.init_args)

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


class DenseBlock(nn.Module):
    """Linear -> ReLU -> Dropout per size in ``sizes`` (an empty list is the identity)."""

    def __init__(self, in_dim: int, sizes: list[int], dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for size in sizes:
            layers += [nn.Linear(in_dim, size), nn.ReLU(), nn.Dropout(dropout)]
            in_dim = size
        self.layers = nn.Sequential(*layers)
        self.out_dim = in_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h)  # (B, T, in_dim) -> (B, T, out_dim)


class StackedLSTM(Net):
    """Option A: LSTM layers of different sizes (e.g. 256 then 128) with dropout between them.

    ``nn.LSTM(num_layers=n)`` forces equal sizes; a wide first layer with a narrower second one gives
    capacity where the raw features are mixed while keeping the top (and the heads) small.
    State is a list of one (h, c) tuple per layer, each ((1, B, H_i), (1, B, H_i)).
    """

    def __init__(self, input_size: int, hidden_sizes: list[int] = [256, 128], dropout: float = 0.3):
        super().__init__()
        self._record(locals())
        if not hidden_sizes:
            raise ValueError("StackedLSTM needs at least one hidden size")
        sizes = [input_size, *hidden_sizes]
        self.layers = nn.ModuleList(nn.LSTM(a, b, batch_first=True) for a, b in zip(sizes, sizes[1:]))
        self.drop = nn.Dropout(dropout)
        self.out_dim = sizes[-1]

    def forward(self, x: torch.Tensor, state=None):
        state = state if state is not None else [None] * len(self.layers)
        new_state = []
        h = x
        for i, (lstm, s) in enumerate(zip(self.layers, state)):
            if i > 0:
                h = self.drop(h)  # between layers only, like nn.LSTM(dropout=...)
            h, s = lstm(h, s)  # (B, T, H_i)
            new_state.append(s)
        return h, new_state


class LSTMDense(Net):
    """Option C: one LSTM, then a Dense block (Linear -> ReLU -> Dropout per size in ``dense_sizes``).

    The dense block gives the heads a non-linear read-out of the LSTM state; dropout is applied to the
    LSTM output and after every dense layer. State is the LSTM's (h, c).
    """

    def __init__(self, input_size: int, hidden_size: int = 128, dense_sizes: list[int] = [128],
                 dropout: float = 0.3):
        super().__init__()
        self._record(locals())
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.dense = DenseBlock(hidden_size, list(dense_sizes), dropout)
        self.out_dim = self.dense.out_dim

    def forward(self, x: torch.Tensor, state=None):
        h, state = self.lstm(x, state)  # (B, T, H)
        return self.dense(self.drop(h)), state  # (B, T, D)


class HybridLSTM(Net):
    """Option D (the recommended default): stacked LSTM of different sizes (A) + Dense block (C).

    Dropout between the LSTM layers, on the top LSTM output and after every dense layer.
    State is StackedLSTM's list of (h, c), one per layer.
    """

    def __init__(self, input_size: int, hidden_sizes: list[int] = [256, 128], dense_sizes: list[int] = [128],
                 dropout: float = 0.3):
        super().__init__()
        self._record(locals())
        self.lstm = StackedLSTM(input_size, list(hidden_sizes), dropout)
        self.drop = nn.Dropout(dropout)
        self.dense = DenseBlock(self.lstm.out_dim, list(dense_sizes), dropout)
        self.out_dim = self.dense.out_dim

    def forward(self, x: torch.Tensor, state=None):
        h, state = self.lstm(x, state)  # (B, T, H_last)
        return self.dense(self.drop(h)), state  # (B, T, D)


class BiLSTM(Net):
    """Option B: a bidirectional LSTM encoder over the whole window (Keras' ``Bidirectional(LSTM)``).

    ``h[:, t] = [forward output at t ; backward output at position 0]``: the backward half is the
    backward pass's summary of the *whole* window, so every position sees the future and only
    ``loss_on: last`` is valid (``causal = False``). There is no carried state (``steppable =
    False``): sampling re-runs the core over the last ``seq_length`` notes for every new note, O(L)
    per note instead of O(1). ``state`` must be None and None is returned. Dropout is applied to the
    output (and between layers when ``num_layers`` > 1).
    """

    steppable = False
    causal = False

    def __init__(self, input_size: int, hidden_size: int = 128, num_layers: int = 1, dropout: float = 0.3):
        super().__init__()
        self._record(locals())
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.hidden_size = hidden_size
        self.out_dim = 2 * hidden_size

    def forward(self, x: torch.Tensor, state=None):
        _check_no_state(self, state)
        h, _ = self.lstm(x)  # (B, T, 2H): [fwd_t ; bwd_t]
        fwd, bwd = h[..., : self.hidden_size], h[..., self.hidden_size :]
        summary = bwd[:, :1].expand_as(bwd)  # (B, T, H): backward pass after reading the whole window
        return self.drop(torch.cat([fwd, summary], dim=-1)), None


class CausalTransformer(Net):
    """Option E: a pre-norm Transformer encoder with a causal mask (GPT-style decoder-only).

    Input features are projected to ``d_model`` and given ``positions``: "learned" (an embedding of
    0..max_len-1) or "sinusoidal" (fixed). ``h[:, t]`` depends only on notes 0..t, so ``loss_on: all``
    works. There is no KV cache (``steppable = False``): sampling re-runs the core over the last
    ``seq_length`` notes for every new note. That is also what keeps positions inside the range the
    model was trained on (0..seq_length-1); ``state`` must be None and None is returned.
    """

    steppable = False
    causal = True

    def __init__(self, input_size: int, d_model: int = 128, nhead: int = 4, num_layers: int = 2,
                 dim_feedforward: int = 256, dropout: float = 0.1, max_len: int = 512, positions: str = "learned"):
        super().__init__()
        self._record(locals())
        if positions not in ("learned", "sinusoidal"):
            raise ValueError(f"positions must be 'learned' or 'sinusoidal', got {positions!r}")
        self.inp = nn.Linear(input_size, d_model)
        if positions == "learned":
            self.pos = nn.Embedding(max_len, d_model)
        else:
            pos = torch.arange(max_len).unsqueeze(1)  # (max_len, 1)
            freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (d_model/2,)
            table = torch.zeros(max_len, d_model)
            table[:, 0::2] = torch.sin(pos * freq)
            table[:, 1::2] = torch.cos(pos * freq)[:, : d_model // 2]
            self.register_buffer("table", table, persistent=False)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)  # pre-norm blocks leave the residual stream un-normalised
        self.max_len = max_len
        self.positions = positions
        self.out_dim = d_model

    def forward(self, x: torch.Tensor, state=None):
        _check_no_state(self, state)
        t = x.shape[1]
        if t > self.max_len:
            raise ValueError(f"CausalTransformer: window of {t} notes is longer than max_len={self.max_len}")
        idx = torch.arange(t, device=x.device)
        pos = self.pos(idx) if self.positions == "learned" else self.table[:t]  # (T, d_model)
        h = self.drop(self.inp(x) + pos)  # (B, T, d_model)
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=x.device, dtype=h.dtype)  # (T, T)
        h = self.encoder(h, mask=mask, is_causal=True)
        return self.norm(h), None


def _check_no_state(net: Net, state) -> None:
    if state is not None:
        raise ValueError(f"{type(net).__name__} is not steppable: call it on the whole window with state=None")


def build_net(spec: dict, input_size: int) -> Net:
    """Rebuild a core from ``Net.config()``; only classes of musicrnn.nets are allowed (safe loading)."""
    path = spec.get("class_path", "")
    module, _, name = path.rpartition(".")
    cls = globals().get(name) if module == __name__ else None
    if not (isinstance(cls, type) and issubclass(cls, Net)):
        from .errors import CheckpointError

        raise CheckpointError(f"unknown network class {path!r} — this checkpoint needs a newer musicrnn")
    return cls(input_size, **spec.get("init_args", {}))
