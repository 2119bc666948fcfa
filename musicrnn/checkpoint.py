"""Safe checkpoint reading shared by fit (resume) and load_model (sample, live, evaluate)."""
from __future__ import annotations

import re

from .errors import CheckpointError


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
