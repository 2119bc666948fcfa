"""Checkpoint reading, the one place for it: safe loading, format versions, and ``load_checkpoint``,
which rebuilds the plain ``MusicNet`` from a checkpoint alone (no config, no data, no Lightning).

``load_checkpoint`` (what every command calls, through ``find_checkpoint``'s one reading of
``--ckpt``) returns a ``LoadedCheckpoint``: the network and the run's recorded settings beside it.

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
from dataclasses import dataclass, field
from pathlib import Path

import torch

from musicrnn.errors import CheckpointError
from musicrnn.io_utils import atomic_write
from musicrnn.model.network import MusicNet, build_core
from musicrnn.runfiles import CHECKPOINT_DIR, LAST, LAST_CHECKPOINT

CHECKPOINT_FORMAT = 2
# the model that ships inside the package (see musicrnn/pretrained/README.md); ``--ckpt pretrained``
PRETRAINED_NAME = "pretrained"
PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained" / "maestro-lstm512.ckpt"


def load_checkpoint_dict(path: str, map_location="cpu") -> dict:
    """``torch.load(weights_only=True)`` with every failure turned into one CheckpointError line."""
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 — the weights-only unpickler raises many types on garbage (IndexError, KeyError...)
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
                              f"resume from {CHECKPOINT_DIR}/{LAST_CHECKPOINT}")
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
    """Where ``--ckpt`` points: None or "pretrained" -> the packaged model; "last" ->
    ``checkpoints/last.ckpt``; a run folder -> its ``last.ckpt`` (or ``checkpoints/last.ckpt`` in it);
    an existing file -> itself; else ``checkpoints/<path>`` when that exists (``--ckpt last.ckpt``
    works from a run folder).

    A missing file is left to ``load_checkpoint`` to report (one line, with the fix).
    """
    if path is None or str(path) == PRETRAINED_NAME:
        if not PRETRAINED.is_file():
            raise CheckpointError(f"the pretrained model is not installed ({PRETRAINED} is missing) — reinstall "
                                  f"musicrnn or pass --ckpt PATH to a checkpoint written by musicrnn.fit")
        return PRETRAINED
    if str(path) == LAST:
        return Path(CHECKPOINT_DIR) / LAST_CHECKPOINT
    p = Path(path)
    if p.is_dir():
        for inside in (p / LAST_CHECKPOINT, p / CHECKPOINT_DIR / LAST_CHECKPOINT):
            if inside.is_file():
                return inside
        return p  # reported by load_checkpoint: a folder without last.ckpt
    if p.exists() or p.is_absolute():
        return p
    alt = Path(CHECKPOINT_DIR) / p
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


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint read for sampling or evaluation: the network and what the run recorded beside it.

    ``hparams``: every hyperparameter of the training run (the LightningModule's); ``data``: how the
    data was prepared (the data module's, e.g. ``sustain``, ``val_window_length``); ``info``: provenance
    written by ``export_weights`` (e.g. ``summary``); ``pretrained``: the model that ships with musicrnn.
    """

    path: Path
    net: MusicNet
    hparams: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    format: int = CHECKPOINT_FORMAT
    pretrained: bool = False

    def using_line(self) -> str:
        """The one line a command prints about which model it runs."""
        if self.pretrained:
            about = self.info.get("summary", "trained on MAESTRO v2.0.0")
            return f"using the pretrained model ({about}; CC BY-NC-SA 4.0) — pass --ckpt PATH for your own"
        return f"using checkpoint {self.path}"


def _check_schema(ckpt: dict, path) -> None:
    """CheckpointError (one line) when the metadata has the wrong shape (a crafted or damaged file)."""
    info = ckpt["musicrnn"]
    spec = info.get("net")
    problems = []
    if not isinstance(spec, dict) or not isinstance(spec.get("class_path"), str):
        problems.append("'net' must be a mapping with a class_path")
    elif not isinstance(spec.get("init_args", {}), dict):
        problems.append("'net.init_args' must be a mapping")
    for key, where in (("hparams", info), ("info", info), ("datamodule_hyper_parameters", ckpt),
                       ("state_dict", ckpt)):
        if where.get(key) is not None and not isinstance(where.get(key), dict):
            problems.append(f"{key!r} must be a mapping, not a {type(where[key]).__name__}")
    if isinstance(ckpt.get("state_dict"), dict):
        bad = [k for k, v in ckpt["state_dict"].items() if not isinstance(v, torch.Tensor)]
        if bad:
            problems.append(f"weight {bad[0]!r} is not a tensor")
    if problems:
        raise CheckpointError(f"{path}: damaged checkpoint metadata ({'; '.join(problems)}) — use a checkpoint "
                              f"written by musicrnn.fit")


def _check_finite(net, path) -> None:
    for name, value in net.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: weight {name} holds NaN or Inf (the run diverged) — use an earlier "
                                  f"checkpoint of the run or re-train with a lower learning rate")


def load_checkpoint(path, map_location="cpu") -> LoadedCheckpoint:
    """Rebuild the trained ``MusicNet`` from a checkpoint alone (no config, no data), weights only, in
    eval mode, with what the run recorded beside it. ``path``: anything ``find_checkpoint`` takes.

    Raises CheckpointError (one clear line) for a missing, truncated, unsafe, foreign, too new,
    malformed or non-finite checkpoint.
    """
    found = find_checkpoint(path)
    path = os.fspath(found)
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder without {LAST_CHECKPOINT} — pass --ckpt "
                              f"{os.path.join(path, LAST_CHECKPOINT)} (or another .ckpt in it)")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint — pass --ckpt PATH to a .ckpt written by musicrnn.fit "
                              f"(e.g. {CHECKPOINT_DIR}/{LAST_CHECKPOINT}), a run folder, 'last' or 'pretrained'")
    ckpt = load_checkpoint_dict(path, map_location)
    version = checkpoint_format(ckpt, path)
    _check_schema(ckpt, path)
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
    except (TypeError, RuntimeError, KeyError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path}: weights do not match the recorded model "
                              f"({str(e).splitlines()[0][:160]}) — the checkpoint is damaged or from "
                              f"another version") from None
    _check_finite(net, path)
    data = {k: v for k, v in (ckpt.get("datamodule_hyper_parameters") or {}).items() if not k.startswith("_")}
    return LoadedCheckpoint(found, net.eval(), recorded, data, dict(info.get("info") or {}), version,
                            found == PRETRAINED)


def load_network(path, map_location="cpu") -> MusicNet:
    """The network of ``load_checkpoint(path)`` alone (tests, benchmarks, notebooks)."""
    return load_checkpoint(path, map_location).net


def export_weights(src, dst, **info) -> Path:
    """Write the network of checkpoint ``src`` (any readable format) to ``dst`` as a small weights-only
    file of today's format: no optimizer, loop or callback state, only what sampling needs (and the data
    options evaluation needs). ``info`` (plain values) is stored as ``ckpt["musicrnn"]["info"]``.
    """

    loaded = load_checkpoint(src)
    net = loaded.net
    ckpt = {"musicrnn": {"format": CHECKPOINT_FORMAT, "net": net.core.config(), "hparams": dict(loaded.hparams),
                         "info": info},
            "state_dict": {"network." + k: v.detach().clone() for k, v in net.state_dict().items()},
            "datamodule_hyper_parameters": dict(loaded.data)}
    with atomic_write(dst) as f:
        torch.save(ckpt, f)
    load_network(dst)  # what was written loads back
    return Path(dst)
