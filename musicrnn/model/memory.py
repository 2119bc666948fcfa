"""Memory of the piece: a pointer over the core's own past hidden states.

Music repeats itself, and an LSTM's state forgets: after a few hundred notes the motif of bar 1 is
gone. The continuous cache (Grave, Joulin, Usunier 2017) keeps the last ``size`` hidden states of the
piece as keys, each with the pitch that followed it as value, and mixes a pointer distribution into
the pitch softmax:

    p(next pitch = w) = (1 - lam_t) * p_model(w) + lam_t * sum_i a_ti [pitch after i == w]
    a_t = softmax_i(theta * q_t . k_i)      over the last ``size`` positions i < t of the piece

Two modes share this code:

- fixed (``learn=False``): ``q_t = h_t``, ``theta`` and ``lam`` are numbers. No parameters, so it can
  be added to any trained network and tuned on validation (``evaluation`` sweeps them); they are
  stored in the checkpoint's hyperparameters.
- learned (``learn=True``): ``q_t = W h_t`` (W starts as the identity), ``theta`` a trained scalar and
  ``lam_t = sigmoid(g . h_t + b)`` a trained gate, so the network learns when to copy. Trained end to
  end through the pitch loss; across chunks the keys are carried detached (truncated BPTT).

The state is ``(keys (N, B, H), values (N, B), valid (N, B), last_h (1, B, H), last_valid (1, B))``,
the batch on dim 1 like an LSTM state, so ``data.pieces.mask_state`` detaches and resets it like any
other. ``last_h`` is the last position's hidden state, whose following pitch is the next input.
Per note, ``step`` costs O(size * H): the same code runs a window of T notes or one note.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NUM_PITCHES = 128


class PitchCache(nn.Module):
    """The pointer memory (see the module doc).

    Args:
        hidden_size: H, the core's output size (keys and queries).
        size: N, how many past positions are remembered (>= 1).
        theta: inverse temperature of the pointer (the learned mode's starting value).
        lam: weight of the pointer in the mixture (the learned gate's starting value).
        learn: train the query projection, theta and the gate.
    """

    def __init__(self, hidden_size: int, size: int, theta: float = 1.0, lam: float = 0.1, learn: bool = False):
        super().__init__()
        self.size, self.learn = int(size), bool(learn)
        if learn:
            self.query = nn.Linear(hidden_size, hidden_size, bias=False)
            nn.init.eye_(self.query.weight)
            self.log_theta = nn.Parameter(torch.tensor(math.log(theta)))
            self.gate = nn.Linear(hidden_size, 1)
            nn.init.zeros_(self.gate.weight)
            lam = min(max(lam, 1e-3), 1 - 1e-3)  # a gate's starting value: strictly inside (0, 1)
            nn.init.constant_(self.gate.bias, math.log(lam / (1 - lam)))
        else:
            self.theta, self.lam = float(theta), float(lam)

    def empty_state(self, batch: int, hidden: int, like: torch.Tensor):
        """The state of a piece's start: nothing remembered."""
        n = self.size
        z = like.new_zeros
        return z(n, batch, hidden), z(n, batch), z(n, batch), z(1, batch, hidden), z(1, batch)

    def forward(self, logits: torch.Tensor, h: torch.Tensor, pitch: torch.Tensor, state=None):
        """logits (B, T, 128), h (B, T, H), input pitches (B, T) -> (log p (B, T, 128), state).

        Position t predicts the pitch after input t; it may point at entries (h_i, pitch_{i+1}) with
        i + 1 <= t, the last ``size`` of them, counting those carried in ``state``.
        """
        b, t, hid = h.shape
        n = self.size
        if state is None:
            state = self.empty_state(b, hid, h)
        keys, values, valid, last_h, last_valid = state
        # this window's entries: key h_{j-1} (the carried last_h for j = 0), value pitch_j
        new_keys = torch.cat([last_h.transpose(0, 1), h[:, :-1]], 1)  # (B, T, H)
        new_valid = torch.cat([last_valid.transpose(0, 1), h.new_ones(b, t - 1)], 1)  # (B, T)
        all_keys = torch.cat([keys.transpose(0, 1), new_keys], 1)  # (B, N+T, H)
        all_values = torch.cat([values.transpose(0, 1), pitch.to(h.dtype)], 1)  # (B, N+T)
        all_valid = torch.cat([valid.transpose(0, 1), new_valid], 1) > 0  # (B, N+T)
        if self.learn:
            query, theta = self.query(h), self.log_theta.exp()
            lam = torch.sigmoid(self.gate(h)).squeeze(-1)  # (B, T)
        else:
            query, theta, lam = h, self.theta, h.new_full((b, t), self.lam)
        scores = theta * torch.bmm(query, all_keys.transpose(1, 2))  # (B, T, N+T)
        k = torch.arange(n + t, device=h.device)
        pos = torch.arange(t, device=h.device).unsqueeze(1)
        allowed = (k > pos) & (k <= pos + n)  # (T, N+T): the last N entries known at position t
        allowed = allowed.unsqueeze(0) & all_valid.unsqueeze(1)  # (B, T, N+T)
        seen = allowed.any(-1)  # (B, T): no memory yet at a piece's first note
        attn = scores.masked_fill(~allowed, float("-inf")).masked_fill(~seen.unsqueeze(-1), 0.0).softmax(-1)
        attn = attn * allowed  # rows with nothing allowed become all zero
        one_hot = F.one_hot(all_values.long().clamp(0, NUM_PITCHES - 1), NUM_PITCHES).to(h.dtype)  # (B, N+T, 128)
        p_cache = torch.bmm(attn, one_hot)  # (B, T, 128)
        lam = (lam * seen).unsqueeze(-1)  # (B, T, 1)
        p = (1 - lam) * logits.softmax(-1) + lam * p_cache
        new_state = (all_keys[:, -n:].transpose(0, 1), all_values[:, -n:].transpose(0, 1),
                     all_valid[:, -n:].transpose(0, 1).to(h.dtype), h[:, -1:].transpose(0, 1), h.new_ones(1, b))
        return p.clamp_min(1e-30).log(), new_state
