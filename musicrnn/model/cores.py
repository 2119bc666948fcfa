"""Sequence cores: plain ``nn.Module``s that know nothing of MIDI or Lightning.

Every core has one interface, shared by training and stateful sampling::

    forward(x: (B, T, input_size), state=None) -> (h: (B, T, out_dim), state)
    step(x_t: (B, input_size), state) -> (h_t: (B, out_dim), state)

``state`` is whatever the core carries between calls (LSTM (h, c) tuples), the same format for both;
feeding a window in one call or one note at a time with the returned state gives the same ``h``.
``step`` is the one per-note path of sampling, live play and evaluation: by default it runs
``forward`` on one timestep; the LSTM cores override it with ``torch.lstm_cell`` and weights looked up
once (at batch 1 the fixed cost of each module call and op is most of a note's time). Cores that
cannot be stepped (``steppable = False``, in ``window_cores``) are re-run over the whole window.
``causal`` says whether ``h[:, t]`` depends only on ``x[:, :t+1]`` (required to train on every position).

Cores are chosen in YAML by ``class_path``; ``input_size`` is supplied by the model (it depends on
the feature set), every other argument comes from ``init_args``.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from musicrnn.ranges import check_ranges


class Net(nn.Module):
    """Base class: records its init args so a checkpoint can rebuild it without the config."""

    steppable: bool = True
    causal: bool = True
    out_dim: int
    _plan: list | None = None  # weights of the fast step, looked up once (see ``step_plan``)

    def step(self, x: torch.Tensor, state=None):
        """One timestep with carried state: x (B, input_size) -> (h (B, out_dim), state).

        The default runs ``forward`` on a window of one note; cores with a faster path override it.
        """
        h, state = self(x.unsqueeze(1), state)  # (B, 1, out_dim)
        return h[:, 0], state

    def step_plan(self) -> list:
        """The weights ``step`` uses, looked up on first use and kept until the mode or the device
        changes (parameters are updated in place, so the kept tensors see new values)."""
        plan = self._plan  # read once: another thread's ``eval()`` may reset it meanwhile
        if plan is None:
            plan = self._plan = self._make_plan()
        return plan

    def _make_plan(self) -> list:
        raise NotImplementedError

    def train(self, mode: bool = True):
        self._plan = None
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        self._plan = None
        return super()._apply(fn, *args, **kwargs)

    def _record(self, args: dict[str, Any]) -> None:
        sig = inspect.signature(type(self).__init__)
        self.init_args = {k: list(args[k]) if isinstance(args[k], (list, tuple)) else args[k]
                          for k in sig.parameters if k not in ("self", "input_size")}  # copies, plain types
        check_ranges("model.net.init_args", self.init_args)

    def config(self) -> dict:
        """{'class_path': ..., 'init_args': ...}: what ``network.build_core`` needs to rebuild this core."""
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

    def _make_plan(self) -> list:
        return lstm_cells(self.lstm)

    def step(self, x: torch.Tensor, state=None):
        if self.training or state is None:
            return super().step(x, state)
        h0, c0 = state  # (L, B, H) each
        plan = self.step_plan()
        if len(plan) == 1:
            h, c = torch.lstm_cell(x, (h0[0], c0[0]), *plan[0])  # (B, H) each
            return h, (h.unsqueeze(0), c.unsqueeze(0))
        hs, cs = [], []
        for k, weights in enumerate(plan):  # dropout between layers is the identity in eval
            x, c = torch.lstm_cell(x, (h0[k], c0[k]), *weights)
            hs.append(x)
            cs.append(c)
        return x, (torch.stack(hs), torch.stack(cs))


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

    def plan(self) -> list:
        """[(weight, bias) per Linear] (each followed by ReLU; dropout is the identity in eval)."""
        return [(m.weight, m.bias) for m in self.layers if isinstance(m, nn.Linear)]


def dense_step(h: torch.Tensor, plan: list) -> torch.Tensor:
    """``DenseBlock`` in eval mode on (B, in_dim) with its ``plan``: Linear -> ReLU per layer."""
    for w, b in plan:
        h = torch.relu(F.linear(h, w, b))
    return h


def lstm_cells(lstm: nn.LSTM) -> list:
    """[(w_ih, w_hh, b_ih, b_hh) per layer] of a unidirectional ``nn.LSTM``, for ``torch.lstm_cell``
    (PyTorch's native LSTM kernel: the same function as the fused one, rounded differently by ~1e-8)."""
    return [tuple(w) for w in lstm.all_weights]


def stacked_step(x: torch.Tensor, state: list, plan: list):
    """``StackedLSTM`` one timestep: x (B, D), [(h (1, B, H), c (1, B, H)) per layer] -> (h (B, H), state)."""
    new = []
    for weights, (h, c) in zip(plan, state):
        x, c = torch.lstm_cell(x, (h[0], c[0]), *weights)
        new.append((x.unsqueeze(0), c.unsqueeze(0)))
    return x, new


class StackedLSTM(Net):
    """Option A: LSTM layers of different sizes (e.g. 256 then 128) with dropout between them.

    ``nn.LSTM(num_layers=n)`` forces equal sizes; a wide first layer with a narrower second one gives
    capacity where the raw features are mixed while keeping the top (and the heads) small.
    State is a list of one (h, c) tuple per layer, each ((1, B, H_i), (1, B, H_i)).
    """

    def __init__(self, input_size: int, hidden_sizes: tuple[int, ...] = (256, 128), dropout: float = 0.3):
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

    def _make_plan(self) -> list:
        return [lstm_cells(lstm)[0] for lstm in self.layers]

    def step(self, x: torch.Tensor, state=None):
        if self.training or state is None:
            return super().step(x, state)
        return stacked_step(x, state, self.step_plan())


class LSTMDense(Net):
    """Option C: one LSTM, then a Dense block (Linear -> ReLU -> Dropout per size in ``dense_sizes``).

    The dense block gives the heads a non-linear read-out of the LSTM state; dropout is applied to the
    LSTM output and after every dense layer. State is the LSTM's (h, c).
    """

    def __init__(self, input_size: int, hidden_size: int = 128, dense_sizes: tuple[int, ...] = (128,),
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

    def _make_plan(self) -> list:
        return [lstm_cells(self.lstm)[0], self.dense.plan()]

    def step(self, x: torch.Tensor, state=None):
        if self.training or state is None:
            return super().step(x, state)
        cell, dense = self.step_plan()
        h, c = torch.lstm_cell(x, (state[0][0], state[1][0]), *cell)  # (B, H) each
        return dense_step(h, dense), (h.unsqueeze(0), c.unsqueeze(0))


class HybridLSTM(Net):
    """Option D: stacked LSTM of different sizes (A) + Dense block (C). (At the 12-minute budget a single
    LSTM(256) on whole pieces beats it: see configs/hybrid.yaml.)

    Dropout between the LSTM layers, on the top LSTM output and after every dense layer.
    State is StackedLSTM's list of (h, c), one per layer.
    """

    def __init__(self, input_size: int, hidden_sizes: tuple[int, ...] = (256, 128),
                 dense_sizes: tuple[int, ...] = (128,),
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

    def _make_plan(self) -> list:
        return [self.lstm.step_plan(), self.dense.plan()]

    def step(self, x: torch.Tensor, state=None):
        if self.training or state is None:
            return super().step(x, state)
        cells, dense = self.step_plan()
        h, state = stacked_step(x, state, cells)
        return dense_step(h, dense), state


def check_no_state(net: Net, state) -> None:
    """Window cores take no carried state."""
    if state is not None:
        raise ValueError(f"{type(net).__name__} is not steppable: call it on the whole window with state=None")
