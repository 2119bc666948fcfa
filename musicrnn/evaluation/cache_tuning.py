"""Tune the fixed memory of the piece (a pointer cache with no trained weights) on validation pieces.

The cache (``model.memory.PitchCache``, ``learn=False``) mixes a pointer over the network's own past
hidden states into its pitch softmax. It has no weights, so it can be added to any trained network;
its size, sharpness theta and weight lambda are chosen here, on every note of validation pieces with
the whole piece before it, and stored in the checkpoint's hyperparameters (``with_cache``), so
``sample``, ``live`` and ``evaluate`` use it with no option.

The network runs once over the pieces (its hidden states and logits are kept); each setting then
only re-runs the cache over them, so a grid of settings costs little more than one.
"""
from __future__ import annotations

import itertools

import torch

from musicrnn.data.pieces import PieceChunks, mask_state
from musicrnn.errors import ConfigError
from musicrnn.model.memory import PitchCache
from musicrnn.model.network import MusicNet


@torch.no_grad()
def piece_outputs(net: MusicNet, pieces: PieceChunks, max_chunks: int | None = None) -> list[tuple]:
    """Run ``net`` (its core and pitch head, cache off) over whole pieces with carried state.

    Returns one (logits (B, L, 128), h (B, L, H), input pitch (B, L), target (B, L), reset (B,),
    mask (B, L)) per batch of chunks, in order (the state carries across them as in validation).
    """
    out, state = [], None
    for k, (chunk, composer, reset, mask) in enumerate(pieces):
        if max_chunks is not None and k >= max_chunks:
            break
        x = chunk[:, :-1]
        state = mask_state(state, ~reset) if state is not None else None
        h, state = net.core(net.encode(x, composer), state)
        out.append((net.heads["pitch"](h), h, x[..., 0], chunk[:, 1:, 0].long(), reset, mask))
    return out


@torch.no_grad()
def cache_pitch_ce(outputs: list[tuple], size: int, theta: float, lam: float) -> float:
    """Mean pitch CE (nats) over the masked-in notes of ``outputs`` with a fixed cache (size 0: none)."""
    total, count, state = 0.0, 0, None
    cache = PitchCache(outputs[0][1].shape[-1], size, theta, lam) if size else None
    for logits, h, pitch, target, reset, mask in outputs:
        if cache is None:
            logp = logits.log_softmax(-1)
        else:
            state = mask_state(state, ~reset) if state is not None else None
            logp, state = cache(logits, h, pitch, state)
        nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, L)
        total += float(nll[mask].sum())
        count += int(mask.sum())
    return total / max(1, count)


def tune(outputs: list[tuple], sizes=(256, 512, 1024), thetas=(2.0, 4.0, 8.0, 16.0),
         lambdas=(0.05, 0.1, 0.15, 0.2, 0.3)) -> tuple[dict, list[dict]]:
    """Grid search: (the best setting with its pitch CE and the no-cache CE, every row of the grid)."""
    base = cache_pitch_ce(outputs, 0, 1.0, 0.0)
    rows = [{"size": n, "theta": t, "lambda": lam, "pitch_ce": cache_pitch_ce(outputs, n, t, lam)}
            for n, t, lam in itertools.product(sizes, thetas, lambdas)]
    best = min(rows, key=lambda r: r["pitch_ce"])
    return {**best, "no_cache_pitch_ce": base}, rows


def with_cache(ckpt: dict, size: int, theta: float, lam: float) -> dict:
    """A copy of a (weights-only) checkpoint dict whose network uses the fixed cache."""
    info = dict(ckpt["musicrnn"])
    hp = dict(info.get("hparams") or {})
    if hp.get("cache_learn"):
        raise ConfigError("this network has a learned memory already: a fixed one is not added to it")
    hp.update(cache_size=int(size), cache_theta=float(theta), cache_lambda=float(lam), cache_learn=False)
    return {**ckpt, "musicrnn": {**info, "hparams": hp}}
