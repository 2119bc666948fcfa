"""``--ckpt_path``: find the checkpoint, check it can resume this run, and continue its TensorBoard folder."""
from __future__ import annotations

import os

from jsonargparse import Namespace

from musicrnn.errors import CheckpointError, ConfigError
from musicrnn.model.checkpoint import load_checkpoint_dict, training_state_dict
from musicrnn.training.preflight import check_resume

LAST = "last.ckpt"


def resolve_ckpt_path(path: str | None, dirpath: str, data: Namespace) -> tuple[str | None, dict, dict]:
    """'last' -> dirpath/last.ckpt; the file must exist, be a readable, safe torch checkpoint and have been
    trained with this run's data regime, batch size and sequence length.

    Returns the path, the shapes of its weights (for ``check_matches``, once the model exists: the
    checkpoint is read here once, not again) and its callbacks' states.
    """
    if path is None:
        return None, {}, {}
    if path == "last":
        path = os.path.join(dirpath, LAST)
        if not os.path.exists(path):
            raise ConfigError(f"--ckpt_path last: {path} does not exist — train once without --ckpt_path first")
    elif os.path.isdir(path):
        raise ConfigError(f"--ckpt_path {path} is a folder — pass a checkpoint file in it, e.g. "
                          f"{os.path.join(path, LAST)}")
    elif not os.path.isfile(path):
        raise ConfigError(f"--ckpt_path {path}: no such checkpoint — pass a .ckpt written by musicrnn.fit")
    ckpt = load_checkpoint_dict(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "loops" not in ckpt:
        raise CheckpointError(f"{path}: not a full training checkpoint of musicrnn.fit (no state_dict/loops) — "
                              f"resume from {os.path.join(dirpath, LAST)}")
    check_resume(path, ckpt, data)
    shapes = {k: tuple(v.shape) for k, v in training_state_dict(ckpt, path).items()}
    return path, shapes, dict(ckpt.get("callbacks") or {})


def check_matches(path: str | None, saved: dict, model) -> None:
    """A checkpoint of another architecture would fail deep inside Lightning: say so in one line.

    ``saved``: {weight name: shape} of the checkpoint at ``path``.
    """
    if path is None:
        return
    ours = model.state_dict()
    diff = sorted(set(saved) ^ set(ours)) or [k for k in ours if saved[k] != tuple(ours[k].shape)]
    if diff:
        raise CheckpointError(f"{path} was trained with a different model (first mismatch: {diff[0]}) — pass the "
                              f"same --config/--model options as that run, or train without --ckpt_path")


def continue_log_version(logger_args: Namespace | None, callbacks: dict) -> None:
    """A resumed run writes into the TensorBoard version folder of the run it resumes (same name)."""
    if logger_args is None or logger_args.get("version") is not None:
        return
    recorded = next((v for k, v in callbacks.items() if k.startswith("BestMetricHParams")), {})
    if recorded.get("log_version") is not None and recorded.get("log_name") == logger_args.get("name"):
        logger_args.version = recorded["log_version"]
