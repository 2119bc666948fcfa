"""A training loader that resumes mid-epoch exactly, and the global RNG state it replays.

``MaestroDataModule.train_dataloader()`` returns a ``ResumableLoader``; Lightning stores its
``state_dict`` in every checkpoint (the loader has ``state_dict``/``load_state_dict``, so the fit loop
saves and restores it) and ``musicrnn.training.callbacks.ExactResume`` checkpoints the global RNG
states, so a resumed run sees the same remaining batches as an uninterrupted one. Works for both
regimes: the windows' sampler permutation and the whole-piece plan (``PieceChunks.__iter__`` draws its
seed from torch's RNG) are both drawn when the epoch's iterator is created.

Under DDP every rank has its own RNG stream and loader position: each checkpoint holds every rank's
(``per_rank``, gathered while all ranks save), and each rank resumes from its own.
"""
from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist


# ---- RNG state that survives torch.load(weights_only=True) -----------------------------------------
def rng_state() -> dict:
    """Global RNG states as tensors / ints / tuples only (numpy's array becomes a tensor)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def per_rank(value) -> list:
    """``value`` of every rank, in rank order (a collective under DDP: every rank must call it)."""
    _, world = _rank_world()
    if world == 1:
        return [value]
    values = [None] * world
    dist.all_gather_object(values, value)
    return values


def this_rank(values: list):
    """This rank's entry of a ``per_rank`` list (rank 0's when the run had fewer ranks)."""
    rank, _ = _rank_world()
    return values[rank] if rank < len(values) else values[0]


class ResumableLoader:
    """Wraps the training DataLoader; Lightning stores its ``state_dict`` in the checkpoint.

    The state is the global RNG state when this epoch's iterator was created (it decides the
    sampler's permutation, the whole-piece plan and the workers' seeds) and how many batches were
    handed out. Resuming replays the iterator from that RNG state, skips the batches already trained
    on, then restores the RNG state of the moment of the checkpoint (set by ``ExactResume``).
    """

    def __init__(self, loader) -> None:
        self.loader = loader
        self._epoch_rng: dict | None = None
        self._fetched = 0
        self._pending: dict | None = None

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def sampler(self):
        """The wrapped loader's sampler: Lightning calls its ``set_epoch`` at every epoch start."""
        return self.loader.sampler

    def __iter__(self) -> Iterator:
        pending, self._pending = self._pending, None
        if pending and pending.get("epoch_rng") is not None and 0 < pending["fetched"] < len(self.loader):
            now = rng_state()
            set_rng_state(pending["epoch_rng"])
            self._epoch_rng, self._fetched = pending["epoch_rng"], 0
            it = iter(self.loader)
            for _ in range(pending["fetched"]):  # fetch (not only index) so augmentation RNG use replays too
                next(it)
                self._fetched += 1
            set_rng_state(now)
        else:
            self._epoch_rng, self._fetched = rng_state(), 0
            it = iter(self.loader)
        for batch in it:
            self._fetched += 1
            yield batch

    def state_dict(self) -> dict:
        state = {"epoch_rng": self._epoch_rng, "fetched": self._fetched}
        return {**state, "per_rank": per_rank(state)}

    def load_state_dict(self, state: dict) -> None:
        self._pending = this_rank(state["per_rank"]) if "per_rank" in state else state
