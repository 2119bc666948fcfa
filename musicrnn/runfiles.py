"""The names of a run's files, spelled once: every module that looks for a checkpoint uses these."""
from __future__ import annotations

CHECKPOINT_DIR = "checkpoints"  # fit's default checkpoint folder (``--checkpoint.dirpath``)
LAST_CHECKPOINT = "last.ckpt"  # the newest complete checkpoint of a run, rewritten in place
LAST = "last"  # ``--ckpt last`` / ``--ckpt_path last``: CHECKPOINT_DIR / LAST_CHECKPOINT
