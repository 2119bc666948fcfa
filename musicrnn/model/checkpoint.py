"""Checkpoint reading, the one place for it: safe loading, format versions, and ``load_network``,
which rebuilds the plain ``MusicNet`` from a checkpoint alone (no config, no data, no Lightning).

Formats (``ckpt["musicrnn"]["format"]``):
- 1: the LightningModule held the network's parts itself: state_dict keys ``pitch_emb.*``,
  ``composer_emb.*``, ``net.*`` (the core), ``heads.*``; core class paths ``musicrnn.nets.X``.
- 2: the LightningModule wraps a ``MusicNet`` as ``network``: keys ``network.pitch_emb.*``, ...,
  ``network.core.*``, ``network.heads.*``; class paths ``musicrnn.model.cores.X`` (or ``window_cores``).
Both load; a newer format is one CheckpointError line naming the version.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from musicrnn.errors import CheckpointError

CHECKPOINT_FORMAT = 2
# the model that ships inside the package (see musicrnn/pretrained/README.md); ``--ckpt pretrained``
PRETRAINED_NAME = "pretrained"
PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained" / "maestro-lstm512.ckpt"


def load_checkpoint_dict(path: str, map_location="cpu") -> dict:
    """``torch.load(weights_only=True)`` with every failure turned into one CheckpointError line."""
    import torch

    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # the weights-only unpickler raises many types on garbage (IndexError, KeyError...)
        msg = str(e)
        glob = re.search(r"(?:unsupported|Unsupported global:) GLOBAL (\S+)", msg)
        if glob:  # a pickled class/function: loading it could run arbitrary code
            raise CheckpointError(f"{path}: refused — it would import {glob.group(1)} (pickled code, not just "
                                  f"weights); only resume from checkpoints written by musicrnn.fit") from None
        first = "" if msg.startswith("Weights only load failed") else ": " + (msg.strip().splitlines() or [""])[0][:100]
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or not a torch file; "
                              f"{type(e).__name__}{first}) — resume from another checkpoint or re-train") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a training checkpoint (a {type(ckpt).__name__}, not a dict) — "
                              f"resume from checkpoints/last.ckpt")
    return ckpt


def checkpoint_format(ckpt: dict, path) -> int:
    """The musicrnn format number of a loaded checkpoint; CheckpointError if it is not ours or too new."""
    info = ckpt.get("musicrnn")
    if not isinstance(info, dict) or "net" not in info:
        raise CheckpointError(f"{path}: not a musicrnn checkpoint (no 'musicrnn' section) — "
                              f"use a checkpoint written by `python -m musicrnn.fit`")
    version = info.get("format", 1)
    if not isinstance(version, int) or not 1 <= version <= CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {version!r} is not one this musicrnn reads "
                              f"(1..{CHECKPOINT_FORMAT}) — upgrade musicrnn")
    return version


def training_state_dict(ckpt: dict, path="<checkpoint>") -> dict:
    """The checkpoint's weights with the keys of the current LightningModule (format 2).

    Format 1 keys are renamed: ``net.X`` -> ``network.core.X``, any other ``X`` -> ``network.X``.
    """
    state = ckpt.get("state_dict") or {}
    if checkpoint_format(ckpt, path) >= 2:
        return state
    return {"network." + ("core." + k[4:] if k.startswith("net.") else k): v for k, v in state.items()}


def network_state_dict(ckpt: dict, path="<checkpoint>") -> dict:
    """The checkpoint's weights with the keys of ``MusicNet`` (the training keys less ``network.``)."""
    return {k[len("network."):]: v for k, v in training_state_dict(ckpt, path).items() if k.startswith("network.")}


def load_initial_weights(net, path: str) -> None:
    """Copy the network weights of checkpoint ``path`` into ``net`` (fine-tuning). Every weight must
    match by name and shape, except the learned memory's (``cache.*``), which may be new."""
    ckpt_path = find_checkpoint(path)
    state = network_state_dict(load_checkpoint_dict(str(ckpt_path)), ckpt_path)
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise CheckpointError(f"--model.init_weights {path}: its weights do not fit this model "
                              f"({str(e).splitlines()[-1].strip()[:160]}) — use the same core and sizes") from None
    missing = [k for k in missing if not k.startswith("cache.")]
    if missing or unexpected:
        raise CheckpointError(f"--model.init_weights {path}: the model and the checkpoint differ (missing "
                              f"{missing[:3]}, unexpected {unexpected[:3]}) — use the same core and options")


def find_checkpoint(path: str | os.PathLike | None) -> Path:
    """None or "pretrained" -> the packaged model; else ``path`` if it exists, else
    ``checkpoints/<path>`` (so ``--ckpt last.ckpt`` works from a run folder).

    A missing file is left to ``load_network`` to report (one line, with the fix).
    """
    if path is None or str(path) == PRETRAINED_NAME:
        if not PRETRAINED.is_file():
            raise CheckpointError(f"the pretrained model is not installed ({PRETRAINED} is missing) — reinstall "
                                  f"musicrnn or pass --ckpt PATH to a checkpoint written by musicrnn.fit")
        return PRETRAINED
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    alt = Path("checkpoints") / p
    return alt if alt.is_file() else p


def check_stored_shapes(build, state: dict, path) -> None:
    """CheckpointError unless the network ``build()`` makes has exactly the tensors of ``state``, shape
    for shape. ``build`` runs on torch's meta device, which allocates nothing, so a small crafted file
    whose recorded sizes claim a huge network (``hidden_size`` 12000 over tiny tensors) is refused
    before that network would take gigabytes; the stored tensors themselves are already in memory."""
    import torch

    with torch.device("meta"):
        claimed = build().state_dict()
    missing = [k for k in claimed if k not in state]
    extra = [k for k in state if k not in claimed]
    wrong = [k for k in claimed if k in state and tuple(claimed[k].shape) != tuple(getattr(state[k], "shape", ()))]
    if missing or extra or wrong:
        what = (f"{wrong[0]} is stored as {tuple(getattr(state[wrong[0]], 'shape', ()))} but the recorded "
                f"model needs {tuple(claimed[wrong[0]].shape)}" if wrong else
                f"missing {missing[0]}" if missing else f"unexpected {extra[0]}")
        raise CheckpointError(f"{path}: weights do not match the recorded model ({what}) — the checkpoint is "
                              f"damaged or from another version")


def load_network(path, map_location="cpu"):
    """Rebuild the trained ``MusicNet`` from a checkpoint alone (no config, no data), weights only, in
    eval mode. Also sets ``.recorded_hparams`` (every hyperparameter of the training run) and
    ``.data_hparams`` (how the data was prepared, e.g. sustain, so evaluation can window data alike).

    Raises CheckpointError (one clear line) for a missing, truncated, unsafe, foreign or too new checkpoint.
    """
    from musicrnn.model.network import MusicNet, build_core

    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder, not a checkpoint — pass --ckpt {os.path.join(path, 'last.ckpt')} "
                              f"(or another .ckpt in it)")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint — pass --ckpt PATH to a .ckpt written by musicrnn.fit "
                              f"(e.g. checkpoints/last.ckpt)")
    ckpt = load_checkpoint_dict(path, map_location)
    state = network_state_dict(ckpt, path)
    info = ckpt["musicrnn"]
    recorded = {k: v for k, v in (info.get("hparams") or {}).items() if not k.startswith("_")}
    names = MusicNet.hparam_names()
    try:
        def build():
            return MusicNet(lambda d: build_core(info["net"], d), **{k: v for k, v in recorded.items() if k in names})

        check_stored_shapes(build, state, path)  # before the real network takes any memory
        net = build()
        net.load_state_dict(state, strict=True)
    except (TypeError, RuntimeError, KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: weights do not match the recorded model "
                              f"({str(e).splitlines()[0][:160]}) — the checkpoint is damaged or from another version")
    net.recorded_hparams = recorded
    net.recorded_info = info.get("info") or {}
    net.data_hparams = {k: v for k, v in (ckpt.get("datamodule_hyper_parameters") or {}).items()
                        if not k.startswith("_")}
    return net.eval()


def export_weights(src, dst, **info) -> Path:
    """Write the network of checkpoint ``src`` (any readable format) to ``dst`` as a small weights-only
    file of today's format: no optimizer, loop or callback state, only what sampling needs (and the data
    options evaluation needs). ``info`` (plain values) is stored as ``ckpt["musicrnn"]["info"]``.
    """
    import torch

    from musicrnn.io_utils import atomic_write

    net = load_network(src)
    ckpt = {"musicrnn": {"format": CHECKPOINT_FORMAT, "net": net.core.config(), "hparams": dict(net.recorded_hparams),
                         "info": info},
            "state_dict": {"network." + k: v.detach().clone() for k, v in net.state_dict().items()},
            "datamodule_hyper_parameters": dict(net.data_hparams)}
    with atomic_write(dst) as f:
        torch.save(ckpt, f)
    load_network(dst)  # what was written loads back
    return Path(dst)
