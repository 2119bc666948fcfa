"""Silence library output that is not the user's business, so an error stays one line.

- Lightning's start-up banner on a machine without accelerators ("GPU available: False, used:
  False", "TPU available: False, ...") and its advertisement for litlogger. A line that reports a
  GPU or TPU that exists is kept.
- torch's deprecation warning about ``LeafSpec`` raised from inside Lightning (``_pytree``): a
  library-internal matter the user cannot act on.
- jsonargparse's deprecation warnings about how LightningCLI calls it (Lightning's business).
- Lightning's note that an IterableDataset has a length (ours is exact per worker), and its advice to
  lower ``log_every_n_steps`` for short epochs (``fit`` does that itself).
- LightningCLI's "args parameter is intended to run from within Python" warning: our CLIs *are*
  called from Python with ``args`` (tests, ``experiments``), which is what the warning is about.

``install()`` is idempotent; every CLI entry point that starts Lightning calls it.
"""
from __future__ import annotations

import logging
import re
import warnings

_NOISE = re.compile(r"^(GPU available: False|TPU available: False|HPU available: False|💡 Tip: .*litlogger)")
_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return not _NOISE.match(record.getMessage())
        except Exception:  # a record that cannot be formatted is not ours to judge
            return True


_FILTER = _DropNoise()


def install() -> None:
    """Filter the messages above from the logging and warnings machinery (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"lightning\.pytorch\.cli")
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended to run from within Python")
    # our checkpoint folder holds last.ckpt and the run lock by design, and the lock already refuses a
    # second run in it: Lightning's "folder not empty" warning has nothing left to warn about
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # the whole-piece dataset gives each loader worker its own batches, so its length is exact
    warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")
    # fit lowers log_every_n_steps to the epoch's batches itself (training.hparams.LogShortEpochs)
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")
