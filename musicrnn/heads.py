"""Output heads: map core features h (B, ..., H) to one note attribute, with its loss and sampler.

Each head has the same small interface so the model treats them alike:
    forward(h) -> out            raw outputs (logits or values)
    loss(out, target) -> scalar  training loss
    point(out) -> value          a point prediction (argmax / mean) for MAE-style metrics
    sample(out, temperature, generator) -> value
    nll(out, target) -> per-element negative log-likelihood, or None if the head has no density
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sample_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample class indices from (B, C) logits with temperature, then optional top-k / nucleus filtering.

    temperature 0 means argmax.
    """
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None and top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) > top_p  # keep the smallest set whose mass reaches top_p
        logits = logits.masked_fill(drop.scatter(-1, idx, drop), float("-inf"))
    probs = logits.softmax(-1)
    return torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator).reshape(probs.shape[:-1])


class PitchHead(nn.Module):
    """128-way pitch logits trained with cross-entropy (nats)."""

    def __init__(self, in_dim: int, num_pitches: int = 128):
        super().__init__()
        self.proj = nn.Linear(in_dim, num_pitches)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.proj(h)  # (..., 128)

    def loss(self, out, target):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1).long())

    def nll(self, out, target):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1).long(), reduction="none")

    def point(self, out):
        return out.argmax(-1)

    def sample(self, out, temperature: float = 1.0, generator=None, top_k=None, top_p=None):
        return sample_logits(out, temperature, top_k, top_p, generator)


class PositivePressureHead(nn.Module):
    """The tutorial's regression head: MSE plus ``pressure * mean(relu(-pred))``.

    The extra term pushes predictions of non-negative quantities (step, duration) above zero.
    It has no density, so it has no NLL and samples its point prediction clipped at 0.
    """

    def __init__(self, in_dim: int, pressure: float = 10.0):
        super().__init__()
        self.proj = nn.Linear(in_dim, 1)
        self.pressure = pressure

    def forward(self, h):
        return self.proj(h).squeeze(-1)  # (...)

    def loss(self, out, target):
        return F.mse_loss(out, target) + self.pressure * F.relu(-out).mean()

    def nll(self, out, target):
        return None

    def point(self, out):
        return out

    def sample(self, out, temperature: float = 1.0, generator=None, **_):
        return out.clamp_min(0.0)
