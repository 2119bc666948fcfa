"""Checks ``fit`` makes on the parsed config before anything is built or written.

Each problem is one ``ConfigError`` / ``CheckpointError`` line naming the option and the fix:

- trainer, early-stopping and seed options outside their range (``ranges.RANGES``);
- a ``class_path`` under ``model`` or ``data`` that is not one of musicrnn's own classes: a config is
  code (LightningCLI instantiates whatever it names), so the choices that are musicrnn's (the sequence
  core) are restricted to musicrnn's classes *before* anything is instantiated. Lightning's own
  callbacks, loggers and plugins stay open (they are Lightning's extension points);
- a network too large for the machine's memory (counted on the meta device, nothing allocated);
- a log or checkpoint folder that cannot be written;
- resuming a checkpoint trained with another regime, batch size or sequence length.
"""
from __future__ import annotations

import importlib
import os

import torch
from jsonargparse import Namespace

from musicrnn.errors import CheckpointError, ConfigError
from musicrnn.model.cores import Net
from musicrnn.model.lightning import MusicModel
from musicrnn.ranges import check_ranges

OWN_PACKAGE = "musicrnn.model."
TRAINER_KEYS = ("accumulate_grad_batches", "val_check_interval", "log_every_n_steps", "check_val_every_n_epoch",
                "max_epochs", "max_steps", "limit_train_batches", "limit_val_batches")
BYTES_PER_PARAMETER = 16  # float32 weights, gradients and Adam's two moments
RESUME_MUST_MATCH = ("regime", "batch_size", "seq_length")


def check_options(c: Namespace) -> None:
    """Ranges of the data options, then the trainer, early-stopping and seed options (LightningCLI's)."""
    check_ranges("data", c.data.as_dict())  # the data's own, first: the model's seq_length follows data's
    check_ranges("trainer", {k: c.trainer.get(k) for k in TRAINER_KEYS})
    check_ranges("early_stopping", {"patience": c.early_stopping.get("patience")})
    check_ranges("", {"seed_everything": c.get("seed_everything")})


def _class_paths(value, key: str):
    if isinstance(value, Namespace):
        if isinstance(value.get("class_path"), str):
            yield key, value.class_path
        for k, v in vars(value).items():
            if isinstance(v, (Namespace, list)):
                yield from _class_paths(v, f"{key}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _class_paths(v, f"{key}[{i}]")


def check_own_classes(c: Namespace) -> None:
    """Every ``class_path`` under model/data must name a musicrnn core (checked before it is imported)."""
    for section in ("model", "data"):
        for key, path in _class_paths(c.get(section), section):
            if not path.startswith(OWN_PACKAGE):
                raise ConfigError(f"--{key}: {path!r} is not a musicrnn core — name one of musicrnn.model.cores "
                                  f"(e.g. musicrnn.model.cores.LSTMNet) or musicrnn.model.window_cores")
            module, _, name = path.rpartition(".")
            try:
                cls = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                raise ConfigError(f"--{key}: no class {path} — see the cores in musicrnn/model/cores.py") from None
            if not (isinstance(cls, type) and issubclass(cls, Net)):
                raise ConfigError(f"--{key}: {path} is not a sequence core (musicrnn.model.cores.Net)")


def available_memory() -> int | None:
    """Bytes of memory this machine can still give (MemAvailable), None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(c: Namespace) -> None:
    """Refuse a network whose training state cannot fit in memory, before allocating any of it."""
    net = c.model.net
    module, _, name = net.class_path.rpartition(".")
    core = getattr(importlib.import_module(module), name)
    init_args = net.get("init_args")
    core_args = init_args.as_dict() if isinstance(init_args, Namespace) else dict(init_args or {})
    model_args = {k: v for k, v in c.model.as_dict().items() if k != "net"}
    with torch.device("meta"):  # shapes only: nothing is allocated
        model = MusicModel(net=lambda d: core(d, **core_args), **model_args)
    n = sum(p.numel() for p in model.parameters())
    need, have = n * BYTES_PER_PARAMETER, available_memory()
    if have is not None and need > have:
        raise ConfigError(f"--model: the network has {n:,} parameters, about {need / 1e9:.1f} GB to train "
                          f"(weights, gradients, Adam), but this machine has {have / 1e9:.1f} GB available — "
                          f"choose a smaller network (e.g. --model.net.init_args.hidden_size)")


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def check_writable(folder: str, what: str, option: str) -> None:
    """The folder (or the folder it will be created in) must be writable."""
    existing = _nearest_existing(folder)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {folder} cannot be written ({existing} is not a writable folder) — pass "
                          f"{option} to a writable folder")


def check_resume(path: str, ckpt: dict, data: Namespace) -> None:
    """A run resumes with the data settings its batches were drawn with."""
    recorded = ckpt.get("datamodule_hyper_parameters") or {}
    for key in RESUME_MUST_MATCH:
        old, new = recorded.get(key), data.get(key)
        if key in recorded and old != new:
            raise CheckpointError(f"--ckpt_path {path} was trained with --data.{key} {old}, this run has {new} — "
                                  f"resume with --data.{key} {old}, or train without --ckpt_path")
