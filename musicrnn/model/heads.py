"""Output heads: map core features h (B, ..., H) to one note attribute, with its loss and sampler.

Each head has the same small interface so the model treats them alike:
    forward(h) -> out            raw outputs (logits or values)
    loss(out, target) -> scalar  training loss
    point(out) -> value          a point prediction (argmax / value / median) for MAE-style metrics
    sample(out, temperature, generator) -> value
    nll(out, target) -> per-element negative log-likelihood, or None if the head has no density

Heads: ``PitchHead`` (128-way softmax), ``PositivePressureHead`` (the tutorial's MSE for step and
duration), ``BinnedHead`` (categorical over fixed bins: log-spaced for step/duration via
``log_edges``, 32 linear velocity bins via ``velocity_edges``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sample_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample class indices from (B, C) logits with temperature, then optional top-k / nucleus filtering.

    temperature 0 means argmax. Sampling draws one Exp(1) per class and takes argmax(p / q) (the
    exponential race, i.e. Gumbel-max): exactly what ``torch.multinomial(p, 1)`` does inside, with the
    same random numbers, minus its input check that costs a host sync and ~5 torch calls per note.
    """
    if temperature <= 0:
        return logits.argmax(-1)
    if temperature != 1:  # x / 1 == x: skip the op (this runs once per generated note)
        logits = logits / temperature
    if top_k is not None and top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) > top_p  # keep the smallest set whose mass reaches top_p
        logits = logits.masked_fill(drop.scatter(-1, idx, drop), float("-inf"))
    probs = logits.softmax(-1)  # (..., C)
    q = torch.empty_like(probs).exponential_(1, generator=generator)  # (..., C) ~ Exp(1)
    return (probs / q).argmax(-1)  # (...,)


class PitchHead(nn.Module):
    """128-way pitch logits trained with cross-entropy (nats)."""

    def __init__(self, in_dim: int, num_pitches: int = 128):
        super().__init__()
        self.proj = nn.Linear(in_dim, num_pitches)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self.proj.weight, self.proj.bias)  # (..., 128); = self.proj(h), one call fewer per note

    def loss(self, out, target):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1).long())

    def nll(self, out, target):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1).long(), reduction="none")

    def elementwise_loss(self, out, target):
        """Per-position loss, target's shape (its mean is ``loss``)."""
        return self.nll(out, target).reshape(target.shape)

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
        return F.linear(h, self.proj.weight, self.proj.bias).squeeze(-1)  # (...)

    def loss(self, out, target):
        return F.mse_loss(out, target) + self.pressure * F.relu(-out).mean()

    def nll(self, out, target):
        return None

    def elementwise_loss(self, out, target):
        """Per-position loss, target's shape (its mean is ``loss``)."""
        return (out - target) ** 2 + self.pressure * F.relu(-out)

    def point(self, out):
        return out

    def sample(self, out, temperature: float = 1.0, generator=None, **_):
        return out.clamp_min(0.0)


def log_edges(max_value: float, num_bins: int = 64, min_value: float = 1e-3) -> torch.Tensor:
    """Bin edges (num_bins + 1,): [0, min_value) then num_bins - 1 log-spaced bins up to ``max_value``.

    Bin 0 holds "zero" (chord notes start together; a step under 1 ms is inaudible); the log spacing
    gives every bin the same relative resolution (about 14 % wide for 64 bins from 1 ms to 4 s).
    """
    if num_bins < 2 or not 0 < min_value < max_value:
        raise ValueError(f"need num_bins >= 2 and 0 < min_value < max_value, got {num_bins}, {min_value}, {max_value}")
    logs = torch.linspace(math.log(min_value), math.log(max_value), num_bins, dtype=torch.float64)
    return torch.cat([torch.zeros(1, dtype=torch.float64), logs.exp()]).float()


def velocity_edges(num_bins: int = 32) -> torch.Tensor:
    """Linear edges over MIDI velocity 1..127 (32 bins of 4 velocities): [1, 5, 9, ..., 129]."""
    width = 128 / num_bins
    return torch.arange(num_bins + 1, dtype=torch.float32) * width + 1.0


class BinnedHead(nn.Module):
    """A categorical distribution over fixed bins of a continuous value, trained with cross-entropy.

    Unlike MSE it can say "either a chord (0 s) or a quarter note (0.5 s)" instead of predicting the
    blurry mean between them, and it has a (discrete) likelihood.

    - ``loss``/``nll``: cross-entropy of the target's bin in nats — a *discrete* NLL on this bin grid
      (comparable between models with the same bins, not with continuous densities; a point mass at
      0 s has no finite density, so a density conversion would be meaningless for bin 0).
    - ``point``: the distribution's **median**, interpolated inside its bin. The median minimises the
      expected absolute error, so it gives the best MAE; the mean is pulled between modes (chords vs
      melody steps) and lands where no note is.
    - ``sample``: a bin from the tempered softmax, then a value uniform inside it (log-uniform for log
      bins) so samples are not quantised; temperature 0 returns the median.

    ``log=True`` interpolates inside bins on a log scale (except bin 0, which starts at 0).
    """

    def __init__(self, in_dim: int, edges: torch.Tensor, log: bool = True):
        super().__init__()
        self.proj = nn.Linear(in_dim, len(edges) - 1)
        self.register_buffer("edges", torch.as_tensor(edges, dtype=torch.float32).clone(), persistent=False)
        self.log = log

    def forward(self, h):
        return F.linear(h, self.proj.weight, self.proj.bias)  # (..., K) logits

    def bin_of(self, value: torch.Tensor) -> torch.Tensor:
        """Bin index (long, same shape) of each value; values outside the edges go to the end bins."""
        return torch.bucketize(value.float().contiguous(), self.edges[1:-1], right=True)

    def _value(self, k: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
        """The value at fraction ``frac`` in [0, 1] through bin ``k``."""
        lo, hi = self.edges[k], self.edges[k + 1]
        linear = lo + frac * (hi - lo)
        if not self.log:
            return linear
        geo = lo.clamp_min(1e-12) * (hi / lo.clamp_min(1e-12)) ** frac
        return torch.where(lo > 0, geo, linear)

    def loss(self, out, target):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), self.bin_of(target).reshape(-1))

    def nll(self, out, target):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), self.bin_of(target).reshape(-1), reduction="none")

    def elementwise_loss(self, out, target):
        """Per-position loss, target's shape (its mean is ``loss``)."""
        return self.nll(out, target).reshape(target.shape)

    def point(self, out):
        cdf = out.float().softmax(-1).cumsum(-1)  # (..., K)
        k = (cdf < 0.5).sum(-1).clamp_max(out.shape[-1] - 1)  # first bin whose cdf reaches 0.5
        before = torch.where(k > 0, cdf.gather(-1, (k - 1).clamp_min(0).unsqueeze(-1)).squeeze(-1),
                             torch.zeros_like(k, dtype=cdf.dtype))
        mass = cdf.gather(-1, k.unsqueeze(-1)).squeeze(-1) - before
        frac = ((0.5 - before) / mass.clamp_min(1e-12)).clamp(0, 1)
        return self._value(k, frac)

    def sample(self, out, temperature: float = 1.0, generator=None, **_):
        if temperature <= 0:
            return self.point(out)
        k = sample_logits(out, temperature, generator=generator)  # (...,)
        frac = torch.rand(k.shape, generator=generator, device=out.device)
        return self._value(k, frac)
