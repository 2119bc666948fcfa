"""``MusicNet``: the whole network as one plain ``nn.Module`` (input encoding -> core -> heads).

It is what a checkpoint holds and what sampling, live play and evaluation run; it knows nothing of
Lightning (``model.lightning.MusicModel`` wraps it for training) and is rebuilt from a checkpoint's
hyperparameters alone (``model.checkpoint.load_network``).

Inputs are raw features (..., 4): pitch, step, duration, velocity, encoded like the tutorial (pitch /
128, step and duration in seconds), optionally with a learned pitch embedding, velocity / 127 and a
composer embedding. Two entry points share that encoding, the core and the heads:

    forward(x (B, T, 4), composer, state) -> ({head: (B, T, ...)}, state)   a window
    step(x_t (B, 4), composer, state)     -> ({head: (B, ...)}, state)      one note, carried state

``step`` is the one per-note path: the core's own ``step`` for recurrent cores (``torch.lstm_cell``),
and for window cores the caller re-runs ``forward`` over its window (``steppable`` says which).
``sample`` turns head outputs at one position into the next note's raw features.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from musicrnn.errors import CheckpointError, ConfigError
from musicrnn.model import cores, window_cores
from musicrnn.model.cores import LSTMNet, Net
from musicrnn.model.heads import BinnedHead, PitchHead, PositivePressureHead, log_edges, velocity_edges
from musicrnn.model.memory import PitchCache
from musicrnn.notes import DEFAULT_VELOCITY

TIMING_HEADS = ("mse", "binned")
CORES = {cls.__name__: cls for mod in (cores, window_cores) for cls in vars(mod).values()
         if isinstance(cls, type) and issubclass(cls, Net) and cls is not Net}
CORE_MODULES = ("musicrnn.model.cores", "musicrnn.model.window_cores", "musicrnn.nets")  # nets: format 1


class HParams(dict):
    """A dict whose keys are also attributes (``net.hparams.seq_length``), like Lightning's."""

    def __getattr__(self, key: str):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def build_core(spec: dict, input_size: int) -> Net:
    """Rebuild a core from ``Net.config()``; only musicrnn's own cores are allowed (safe loading).

    ``musicrnn.nets.X`` (checkpoint format 1, before the cores moved to ``musicrnn.model``) is X.
    """
    path = spec.get("class_path", "")
    module, _, name = path.rpartition(".")
    cls = CORES.get(name) if module in CORE_MODULES else None
    if cls is None:
        raise CheckpointError(f"unknown network class {path!r} — this checkpoint needs a newer musicrnn")
    return cls(input_size, **spec.get("init_args", {}))


class MusicNet(nn.Module):
    """Next-note network: encoder -> core -> pitch / step / duration [/ velocity] heads.

    Args (see ``model.lightning.MusicModel`` for their meaning): ``core`` (a ``Net``, or a callable
    that makes one from the encoded input size), ``seq_length``, ``pitch_embedding``, ``velocity``,
    ``composer_dim``, ``composers``, ``timing_head``, ``timing_bins``, ``step_max``, ``duration_max``,
    ``pressure``, ``dropout`` (on the core's output, before the heads, in training), and the memory of
    the piece (``model.memory.PitchCache``): ``cache_size`` past positions (0 = off), ``cache_theta``,
    ``cache_lambda``, ``cache_learn``. With the cache on, the pitch output is log-probabilities (the
    mixture) instead of logits, and the state is ``(core state, cache state)``.
    """

    def __init__(self, core: Net | Callable[[int], Net] = LSTMNet, seq_length: int = 25, pitch_embedding: int = 0,
                 velocity: bool = False, composer_dim: int = 0, composers: list[str] | None = None,
                 timing_head: str = "mse", timing_bins: int = 64, step_max: float = 4.0, duration_max: float = 8.0,
                 pressure: float = 10.0, dropout: float = 0.0, cache_size: int = 0, cache_theta: float = 1.0,
                 cache_lambda: float = 0.1, cache_learn: bool = False):
        super().__init__()
        if timing_head not in TIMING_HEADS:
            raise ConfigError(f"model.timing_head must be one of {TIMING_HEADS}, got {timing_head!r}")
        if pitch_embedding < 0 or composer_dim < 0:
            raise ConfigError("model.pitch_embedding and model.composer_dim must be >= 0 (0 = off)")
        self.hparams = HParams(seq_length=seq_length, pitch_embedding=pitch_embedding, velocity=velocity,
                               composer_dim=composer_dim, composers=list(composers) if composers else composers,
                               timing_head=timing_head, timing_bins=timing_bins, step_max=step_max,
                               duration_max=duration_max, pressure=pressure, dropout=dropout,
                               cache_size=cache_size, cache_theta=cache_theta, cache_lambda=cache_lambda,
                               cache_learn=cache_learn)
        self.seq_length = int(seq_length)
        self.pitch_emb = nn.Embedding(128, pitch_embedding) if pitch_embedding else None
        self.composer_emb = nn.Embedding(max(1, len(composers or [])), composer_dim) if composer_dim else None
        self.input_size = (pitch_embedding or 1) + 2 + int(velocity) + composer_dim
        self.core = core if isinstance(core, Net) else core(self.input_size)
        h = self.core.out_dim
        self.dropout = nn.Dropout(dropout) if dropout else None
        self.cache = PitchCache(h, cache_size, cache_theta, cache_lambda, cache_learn) if cache_size else None
        if timing_head == "mse":
            step, duration = PositivePressureHead(h, pressure), PositivePressureHead(h, pressure)
        else:
            step = BinnedHead(h, log_edges(step_max, timing_bins))
            duration = BinnedHead(h, log_edges(duration_max, timing_bins))
        self.heads = nn.ModuleDict({"pitch": PitchHead(h), "step": step, "duration": duration})
        if velocity:
            self.heads["velocity"] = BinnedHead(h, velocity_edges(32), log=False)
        ncol = 3 + int(velocity)  # raw columns used: pitch, step, duration[, velocity]
        self.register_buffer("divisor", torch.tensor([128.0, 1.0, 1.0, 127.0][:ncol]), persistent=False)

    @classmethod
    def hparam_names(cls) -> list[str]:
        """The constructor's hyperparameters (every argument but the core)."""
        return [k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "core")]

    @property
    def steppable(self) -> bool:
        """True when the core can be fed one note at a time with carried state (O(1) per note)."""
        return self.core.steppable

    @property
    def composers(self) -> list[str]:
        return list(self.hparams.composers or [])

    # ---- input encoding ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, composer: torch.Tensor | None = None) -> torch.Tensor:
        """Raw features (B, ..., 4) -> network input (B, ..., input_size).

        Columns: pitch/128 or pitch embedding (P), step and duration in seconds, [velocity/127],
        [composer embedding (C), the same at every position]. ``composer`` None means unknown (0).
        """
        ncol = self.divisor.shape[0]
        if self.pitch_emb is None:
            h = x[..., :ncol] / self.divisor  # (B, ..., 3 [+ 1]); x / 1 is exact: one op for all columns
        else:
            pitch = self.pitch_emb(x[..., 0].long().clamp(0, 127))  # (B, ..., P)
            h = torch.cat([pitch, x[..., 1:ncol] / self.divisor[1:]], dim=-1)
        if self.composer_emb is None:
            return h
        if composer is None:
            composer = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        composer = torch.as_tensor(composer, device=x.device).long().reshape(-1)
        if composer.numel() == 1 and x.shape[0] > 1:
            composer = composer.expand(x.shape[0])
        c = self.composer_emb(composer)  # (B, C)
        c = c.reshape(c.shape[0], *([1] * (x.dim() - 2)), c.shape[1]).expand(*h.shape[:-1], -1)  # (B, ..., C)
        return torch.cat([h, c], dim=-1)

    def check_composer(self, composer: torch.Tensor | None) -> None:
        """ConfigError for a composer id the embedding does not have (user input when sampling)."""
        if composer is None or self.composer_emb is None:
            return
        n = self.composer_emb.num_embeddings
        composer = torch.as_tensor(composer)
        if int(composer.max()) >= n or int(composer.min()) < 0:
            raise ConfigError(f"composer id out of range 0..{n - 1} (0 = unknown); see the model's composers")

    # ---- the two entry points ------------------------------------------------------------------
    def forward(self, x: torch.Tensor, composer: torch.Tensor | None = None, state=None):
        """x (B, T, 4) raw features -> ({head: out (B, T, ...)}, state)."""
        if not self.training:
            self.check_composer(composer)
        core_state, cache_state = self._split_state(state)
        h, core_state = self.core(self.encode(x, composer), core_state)  # (B, T, H)
        return self._heads(h, x[..., 0], core_state, cache_state)

    def step(self, x: torch.Tensor, composer: torch.Tensor | None = None, state=None):
        """One note per sample with carried state: x (B, 4) raw -> ({head: out (B, ...)}, state).

        The same as ``forward(x.unsqueeze(1), composer, state)`` at its only position (tested), through
        the core's ``step``. Composer ids are checked by ``forward`` (run on the prime first).
        """
        core_state, cache_state = self._split_state(state)
        h, core_state = self.core.step(self.encode(x, composer), core_state)  # (B, H)
        if self.cache is None:
            return {name: head(h) for name, head in self.heads.items()}, core_state
        out, state = self._heads(h.unsqueeze(1), x[:, :1], core_state, cache_state)
        return {name: v[:, 0] for name, v in out.items()}, state

    def _split_state(self, state):
        """(core state, cache state): the network's state is the core's alone without a cache."""
        if self.cache is None:
            return state, None
        return state if state is not None else (None, None)

    def _heads(self, h: torch.Tensor, pitch: torch.Tensor, core_state, cache_state):
        """Core output h (B, T, H) and input pitches (B, T) -> ({head: out}, the network's state)."""
        hd = self.dropout(h) if self.dropout is not None and self.training else h
        out = {name: head(hd) for name, head in self.heads.items()}
        if self.cache is None:
            return out, core_state
        out["pitch"], cache_state = self.cache(out["pitch"], h, pitch, cache_state)  # log-probabilities
        return out, (core_state, cache_state)

    # ---- sampling ------------------------------------------------------------------------------
    def sample(self, out: dict, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
               generator: torch.Generator | None = None, timing_temperature: float | None = None) -> torch.Tensor:
        """Head outputs at one position {name: (B, ...)} -> the sampled next note, raw features (B, 4).

        ``temperature`` scales the pitch distribution, and step, duration and velocity too unless
        ``timing_temperature`` is given (then that one scales those three).

        Pitch from the tempered (top-k / top-p filtered) softmax; step and duration from their heads'
        samplers (MSE heads: the prediction clipped at 0, as the tutorial; binned heads: a tempered bin,
        then a value inside it; temperature 0 = median); velocity from its head (an integer 1..127)
        when modelled, else ``DEFAULT_VELOCITY``. Runs without autograd.
        """
        if torch.is_grad_enabled():
            with torch.no_grad():
                return self.sample(out, temperature, top_k, top_p, generator, timing_temperature)
        heads = self.heads
        timing = temperature if timing_temperature is None else timing_temperature
        pitch = heads["pitch"].sample(out["pitch"], temperature, generator, top_k=top_k, top_p=top_p)  # (B,)
        step = heads["step"].sample(out["step"], timing, generator).clamp_min(0.0)  # (B,)
        duration = heads["duration"].sample(out["duration"], timing, generator).clamp_min(0.0)
        if "velocity" in heads:
            velocity = heads["velocity"].sample(out["velocity"], timing, generator).round().clamp(1, 127)
        else:
            velocity = torch.full_like(step, DEFAULT_VELOCITY)
        return torch.stack([pitch.to(step.dtype), step, duration, velocity.to(step.dtype)], dim=-1)  # (B, 4)
