"""Cores that are not steppable: they see the whole window (``steppable = False``), so sampling re-runs
them over the last ``seq_length`` notes for every new note through the same entry point (``step`` of
the network falls back to the window). See ``cores`` for the interface."""
from __future__ import annotations

import math

import torch
from torch import nn

from musicrnn.model.cores import Net, check_no_state


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
        check_no_state(self, state)
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
        check_no_state(self, state)
        t = x.shape[1]
        if t > self.max_len:
            raise ValueError(f"CausalTransformer: window of {t} notes is longer than max_len={self.max_len}")
        idx = torch.arange(t, device=x.device)
        pos = self.pos(idx) if self.positions == "learned" else self.table[:t]  # (T, d_model)
        h = self.drop(self.inp(x) + pos)  # (B, T, d_model)
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=x.device, dtype=h.dtype)  # (T, T)
        h = self.encoder(h, mask=mask, is_causal=True)
        return self.norm(h), None

