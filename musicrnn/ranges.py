"""The allowed range of every numeric constructor option, in one place, and the check that uses it.

``MusicModel``, ``MaestroDataModule``, the sequence cores (``model.cores.Net``) and the fit CLI call
``check_ranges`` first thing in their constructor, so an impossible value (``--data.batch_size 0``,
``--model.lr -1``, a negative loss weight) is one ``error:`` line before anything is written (log
folder, checkpoints), instead of a traceback or a run that "trains" to a negative loss.

A rule is ``(low, high, low_open, high_open)``: ``None`` = unbounded on that side; ``*_open`` = the
bound itself is excluded. Floats must also be finite. ``None`` values (optional options) are skipped.
List values (``hidden_sizes``) are checked element by element.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

Rule = tuple[float | None, float | None, bool, bool]


def _ge(x: float) -> Rule:  # x <= v
    return (x, None, False, False)


def _gt(x: float) -> Rule:  # x < v
    return (x, None, True, False)


def _unit(high_open: bool = True, low_open: bool = False) -> Rule:  # [0, 1) by default
    return (0.0, 1.0, low_open, high_open)


def _between(low: float, high: float) -> Rule:  # low <= v <= high
    return (low, high, False, False)


POSITIVE, NON_NEGATIVE, AT_LEAST_ONE, AT_LEAST_TWO = _gt(0), _ge(0), _ge(1), _ge(2)
# Sizes get upper bounds far above any useful value, so a typo (10**9) is one line, not an allocation
# traceback or minutes of swapping: LSTM(16384) already holds ~4 GB of weights; 4096 timing bins on the
# log scale are 0.2 % wide; 65536 notes of context is hours of music.
WIDTH, LENGTH = _between(1, 16384), _between(1, 65536)

# key (as the user writes it, without "--") -> rule
RANGES: dict[str, Rule] = {
    # model (musicrnn.model.lightning.MusicModel)
    "model.seq_length": LENGTH,
    "model.pitch_weight": NON_NEGATIVE,
    "model.step_weight": NON_NEGATIVE,
    "model.duration_weight": NON_NEGATIVE,
    "model.velocity_weight": NON_NEGATIVE,
    "model.pressure": NON_NEGATIVE,
    "model.timing_bins": _between(2, 4096),
    "model.step_max": POSITIVE,
    "model.duration_max": POSITIVE,
    "model.pitch_embedding": _between(0, 4096),
    "model.composer_dim": _between(0, 4096),
    "model.composer_dropout": _unit(high_open=False),  # 1 = always "unknown composer"
    "model.lr": POSITIVE,
    "model.weight_decay": NON_NEGATIVE,
    "model.plateau_factor": _unit(low_open=True),
    "model.plateau_patience": NON_NEGATIVE,
    "model.gamma": _unit(high_open=False, low_open=True),
    "model.warmup_steps": NON_NEGATIVE,
    "model.min_lr_ratio": _unit(high_open=False),
    "model.dropout": _unit(),
    "model.cache_size": NON_NEGATIVE,
    "model.cache_theta": POSITIVE,
    "model.cache_lambda": _unit(),
    # data (musicrnn.data.datamodule.MaestroDataModule)
    "data.seq_length": LENGTH,
    "data.batch_size": LENGTH,
    "data.max_files": AT_LEAST_ONE,
    "data.stride": AT_LEAST_ONE,
    "data.train_windows_per_epoch": AT_LEAST_ONE,
    "data.val_windows": AT_LEAST_ONE,
    "data.transpose": (0, 127, False, False),
    "data.time_stretch": _unit(),
    "data.num_workers": NON_NEGATIVE,
    "data.seed": NON_NEGATIVE,  # numpy's default_rng refuses negative seeds
    "data.jobs": AT_LEAST_ONE,
    "data.val_window_length": LENGTH,
    # sequence cores (musicrnn.model.cores, window_cores): every core's init_args share these names
    "model.net.init_args.hidden_size": WIDTH,
    "model.net.init_args.hidden_sizes": WIDTH,
    "model.net.init_args.dense_sizes": WIDTH,
    "model.net.init_args.num_layers": _between(1, 64),
    "model.net.init_args.dropout": _unit(),
    "model.net.init_args.d_model": WIDTH,
    "model.net.init_args.nhead": _between(1, 256),
    "model.net.init_args.dim_feedforward": _between(1, 65536),
    "model.net.init_args.max_len": LENGTH,
    # Lightning's trainer, early stopping and seed, as fit exposes them
    "trainer.accumulate_grad_batches": AT_LEAST_ONE,
    "trainer.val_check_interval": POSITIVE,
    "trainer.log_every_n_steps": AT_LEAST_ONE,
    "trainer.check_val_every_n_epoch": AT_LEAST_ONE,
    "trainer.max_epochs": _ge(-1),  # -1 = no limit
    "trainer.max_steps": _ge(-1),
    "trainer.limit_train_batches": POSITIVE,
    "trainer.limit_val_batches": NON_NEGATIVE,
    "early_stopping.patience": NON_NEGATIVE,
    "seed_everything": (0, 2**32 - 1, False, False),  # numpy's seeds are 32-bit
    # fit CLI options
    "checkpoint_every_minutes": NON_NEGATIVE,
    "cpu_budget_minutes": POSITIVE,
    "checkpoint_every_n_steps": AT_LEAST_ONE,
    "samples_every_n_epochs": NON_NEGATIVE,
}


def describe(rule: Rule) -> str:
    """``(0, None, True, False)`` -> "> 0"; ``(0, 1, False, True)`` -> "in [0, 1)"."""
    lo, hi, lo_open, hi_open = rule
    if hi is None:
        return f"{'>' if lo_open else '>='} {_num(lo)}"
    if lo is None:
        return f"{'<' if hi_open else '<='} {_num(hi)}"
    return f"in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


def _inside(v: float, rule: Rule) -> bool:
    lo, hi, lo_open, hi_open = rule
    if isinstance(v, float) and not math.isfinite(v):
        return False
    if lo is not None and (v <= lo if lo_open else v < lo):
        return False
    if hi is not None and (v >= hi if hi_open else v > hi):
        return False
    return True


def check_ranges(prefix: str, values: Mapping[str, Any]) -> None:
    """Raise ConfigError for the first value of ``values`` outside its ``RANGES[prefix.name]`` rule.

    ``prefix``: "model", "data", "model.net.init_args" or "" (fit options). Names without a rule
    (strings, booleans, classes) are ignored, so a constructor can pass ``locals()``.
    """
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        rule = RANGES.get(key)
        if rule is None or value is None or isinstance(value, bool):
            continue
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not _inside(v, rule):
                raise ConfigError(f"--{key} must be {describe(rule)}, got {value!r} — fix the value "
                                  f"(see `python -m musicrnn.fit --help`)")
    if prefix == "model.net.init_args" and "d_model" in values and "nhead" in values:
        d, h = values["d_model"], values["nhead"]
        if isinstance(d, int) and isinstance(h, int) and h > 0 and d % h:
            raise ConfigError(f"--model.net.init_args.d_model ({d}) must be a multiple of "
                              f"--model.net.init_args.nhead ({h}) — change one of them")
