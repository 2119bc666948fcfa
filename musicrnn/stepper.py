"""The sampling fast path: ``MusicModel.forward`` for one note at a time, with few torch calls.

``MusicModel.stepper()`` is the entry point (generate.py builds one per run); this module holds the
``Stepper`` it returns and ``_core_plan``, which reads the weights out of a known LSTM core.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from .module import MusicModel


class Stepper:
    """``MusicModel.forward`` for one timestep of an LSTM core, with few torch calls.

    ``stepper(x (B, 4) raw, composer (B,) long | None, cells) -> ({head: (B, ...)}, cells)``, where
    cells is ``[(h (B, H), c (B, H)) per LSTM layer]``; ``cells(state)`` / ``state(cells)`` convert
    from / to the core's own state format (so ``forward`` and the stepper can be mixed).

    Why: sampling feeds one note per step, and at batch 1 the fixed cost per call is most of the
    time, not the arithmetic: ``nn.LSTM``'s oneDNN path costs ~0.1 ms for one timestep, and each
    module call, parameter lookup and op adds microseconds. The stepper holds the weights, steps LSTM
    layers with ``torch.lstm_cell`` (PyTorch's native LSTM kernel: the same function as oneDNN's,
    rounded differently by ~1e-8) and runs the dense block and heads as ``F.linear``; the encoding is
    bitwise ``encode``'s. The weights are the module's own parameters (in-place updates are seen);
    composer ids are not range-checked (``forward`` checked them when the prime was run).
    """

    def __init__(self, model: "MusicModel", layers: list, stacked: bool, dense: list, heads: list):
        self.layers, self.stacked, self.dense, self.heads = layers, stacked, dense, heads
        self.ncol = 3 + int(bool(model.hparams.velocity))  # pitch, step, duration[, velocity]
        weight = layers[0][0]
        self.div = torch.tensor([128.0, 1.0, 1.0, 127.0][:self.ncol], dtype=weight.dtype,
                                device=weight.device)  # x / 1 is exact: one op for all columns
        self.div_rest = self.div[1:].clone()
        self.pitch_emb = model.pitch_emb.weight if model.pitch_emb is not None else None
        self.composer_emb = model.composer_emb.weight if model.composer_emb is not None else None

    def cells(self, state) -> list:
        """Core state -> [(h (B, H), c (B, H)) per layer]."""
        if self.stacked:  # [(h (1, B, H), c (1, B, H)) per layer]
            return [(h[0], c[0]) for h, c in state]
        h, c = state  # (L, B, H) each
        return [(h[k], c[k]) for k in range(len(self.layers))]

    def state(self, cells: list):
        """[(h (B, H), c (B, H)) per layer] -> the core's state format."""
        if self.stacked:
            return [(h.unsqueeze(0), c.unsqueeze(0)) for h, c in cells]
        return torch.stack([h for h, _ in cells]), torch.stack([c for _, c in cells])

    def __call__(self, x: torch.Tensor, composer: torch.Tensor | None, cells: list):
        if self.pitch_emb is None:  # encode
            h = x[:, :self.ncol] / self.div  # (B, 1 + 2 [+ 1])
        else:
            pitch = F.embedding(x[:, 0].long().clamp(0, 127), self.pitch_emb)  # (B, P)
            h = torch.cat([pitch, x[:, 1:self.ncol] / self.div_rest], -1)
        if self.composer_emb is not None:
            if composer is None:
                composer = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            h = torch.cat([h, F.embedding(composer, self.composer_emb)], -1)  # (B, input_size)
        new = []
        for weights, hc in zip(self.layers, cells):
            hc = torch.lstm_cell(h, hc, *weights)  # ((B, H), (B, H)); dropout between layers: off in eval
            new.append(hc)
            h = hc[0]
        for w, b, relu in self.dense:  # Linear [-> ReLU]; dropout is the identity in eval
            h = F.linear(h, w, b)
            if relu:
                h = torch.relu(h)
        out = {}
        for name, w, b, squeeze in self.heads:
            o = F.linear(h, w, b)  # (B, K)
            out[name] = o.squeeze(-1) if squeeze else o
        return out, new


def _core_plan(net: nn.Module):
    """(LSTM layer weights, state is a per-layer list, dense [(w, b, relu)]) of a known LSTM core in
    eval mode, or None (-> ``forward``). Exact type checks: a subclass may change ``forward``."""
    from .nets import HybridLSTM, LSTMDense, LSTMNet, StackedLSTM

    def lstm_layers(lstm) -> list | None:
        if type(lstm) is not nn.LSTM or lstm.bidirectional or lstm.proj_size or lstm.training:
            return None
        return [tuple(w) for w in lstm.all_weights]  # (w_ih, w_hh[, b_ih, b_hh]) per layer

    def stacked_layers(stack) -> list | None:
        if type(stack) is not StackedLSTM:
            return None
        layers = [lstm_layers(lstm) for lstm in stack.layers]
        if any(w is None or len(w) != 1 for w in layers):
            return None
        return [w[0] for w in layers]

    kind = type(net)
    if kind is LSTMNet:
        layers = lstm_layers(net.lstm)
        return None if layers is None else (layers, False, [])
    if kind is StackedLSTM:
        layers = stacked_layers(net)
        return None if layers is None else (layers, True, [])
    if kind not in (LSTMDense, HybridLSTM):
        return None
    stacked = kind is HybridLSTM
    layers = stacked_layers(net.lstm) if stacked else lstm_layers(net.lstm)
    if layers is None:
        return None
    dense: list[list] = []
    for layer in net.dense.layers:  # Linear -> ReLU -> Dropout per size
        if type(layer) is nn.Linear:
            dense.append([layer.weight, layer.bias, False])
        elif type(layer) is nn.ReLU and dense and not dense[-1][2]:
            dense[-1][2] = True
        elif type(layer) is not nn.Dropout:
            return None
    return layers, stacked, [tuple(d) for d in dense]
