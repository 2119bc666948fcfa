"""Whole-piece (language-model) batches: every note computed once per epoch, with carried context.

Each file is cut into consecutive chunks of ``seq_length`` predicted notes (a chunk holds
``seq_length + 1`` rows: inputs are rows 0..L-1, targets rows 1..L, so consecutive chunks overlap by
one note). The chunks of all files, files in a seeded random order, form one long list that is split
into ``streams`` equal parts (the "batchify" of truncated BPTT): batch k holds chunk k of every stream,
so row i of consecutive batches walks through its files in order and the model may carry its
(detached) recurrent state from one batch to the next. ``reset[i]`` says where that state must start
from zero: the first chunk of a file and the first chunk of a stream.

A batch is a ``PieceBatch(chunk (B, L+1, 4), composer (B,), reset (B,) bool, mask (B, L) bool)``; ``mask`` marks
real targets (validation pads each file's last partial chunk and the ends of short streams).

- Training: each file gets a random start offset inside its slack (``(n - 1) % L`` notes) so the
  chunk grid moves between epochs while the chunk count (and the epoch length) stays fixed; one
  transposition and one time-stretch are drawn per file (the carried state sees one consistent key).
- Validation: every note of every file, offset 0, files dealt to streams longest first (balanced).
- DDP: all ranks draw the same plan (same seed) and rank r keeps streams r*B..(r+1)*B-1.
- DataLoader workers: worker w builds batches w, w+N, ... of the same plan; the loader interleaves
  them round-robin, so the order is the same as in the main process.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from musicrnn.data.batches import PieceBatch
from musicrnn.notes import PIANO_HIGH, PIANO_LOW


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class PieceChunks(IterableDataset):
    """Streams of consecutive chunks of whole files (see the module doc).

    Args:
        features: (N, 4) float32 raw features of all files concatenated; ``offsets`` (n_files + 1,).
        composer_ids: (n_files,) composer id per file.
        seq_length: predicted notes per chunk (L).
        streams: batch rows per rank (B).
        train: random file order, offsets and augmentation (else every note, fixed order).
        transpose, time_stretch: training augmentation, one draw per file.
    """

    def __init__(self, features: np.ndarray, offsets: np.ndarray, composer_ids: np.ndarray, seq_length: int,
                 streams: int, train: bool, transpose: int = 0, time_stretch: float = 0.0):
        super().__init__()
        self.features = torch.from_numpy(features)
        self.offsets = np.asarray(offsets, np.int64)
        self.composer = np.asarray(composer_ids, np.int64)
        self.seq_length, self.streams, self.train = seq_length, streams, train
        self.transpose, self.time_stretch = transpose, time_stretch
        lengths = np.diff(self.offsets)
        self.lengths = lengths
        if train:  # full chunks only; the slack moves the grid between epochs
            self.chunks = np.maximum(lengths - 1, 0) // seq_length
        else:  # every target note; the last chunk of a file may be partial
            self.chunks = -(-np.maximum(lengths - 1, 0) // seq_length)
        pitch = features[:, 0] if len(features) else np.zeros(0, np.float32)
        self.low = np.array([pitch[a:b].min() if b > a else 60 for a, b in zip(self.offsets, self.offsets[1:])])
        self.high = np.array([pitch[a:b].max() if b > a else 60 for a, b in zip(self.offsets, self.offsets[1:])])

    @property
    def total_chunks(self) -> int:
        return int(self.chunks.sum())

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        _, world = _rank_world()
        if self.train:
            return self.total_chunks // (self.streams * world)
        return max((len(s) for s in self._val_streams(world)), default=0)

    # ---- plans: a list per stream of chunk records (file, start, shift, stretch, first) -------------
    def _train_plan(self, rng: np.random.Generator, world: int) -> list[list[tuple]]:
        L, rows = self.seq_length, self.streams * world
        flat = []
        for f in rng.permutation(len(self.chunks)):
            c = int(self.chunks[f])
            if c == 0:
                continue
            slack = int(self.lengths[f] - 1 - c * L)
            o = int(rng.integers(0, slack + 1))
            shift = 0
            if self.transpose:
                lo = max(-self.transpose, PIANO_LOW - int(self.low[f]))
                hi = min(self.transpose, PIANO_HIGH - int(self.high[f]))
                shift = int(rng.integers(lo, hi + 1)) if hi >= lo else 0
            stretch = 1.0 + self.time_stretch * (2 * float(rng.random()) - 1) if self.time_stretch else 1.0
            flat += [(int(f), self.offsets[f] + o + j * L, shift, stretch, j == 0) for j in range(c)]
        per = len(flat) // rows
        return [flat[i * per:(i + 1) * per] for i in range(rows)]

    def _val_streams(self, world: int) -> list[list[tuple]]:
        rows = self.streams * world
        streams: list[list[tuple]] = [[] for _ in range(rows)]
        load = np.zeros(rows, np.int64)
        for f in sorted(range(len(self.chunks)), key=lambda f: (-int(self.chunks[f]), f)):
            c = int(self.chunks[f])
            if c == 0:
                continue
            i = int(np.argmin(load))
            streams[i] += [(f, self.offsets[f] + j * self.seq_length, 0, 1.0, j == 0) for j in range(c)]
            load[i] += c
        return streams

    def _chunk(self, rec: tuple | None) -> tuple[torch.Tensor, bool, torch.Tensor]:
        L = self.seq_length
        x = torch.zeros(L + 1, 4)
        mask = torch.zeros(L, dtype=torch.bool)
        if rec is None:  # padding after a short validation stream
            return x, True, mask
        f, s, shift, stretch, first = rec
        end = min(s + L + 1, int(self.offsets[f + 1]))
        n = end - s
        x[:n] = self.features[s:end]
        if shift:
            x[:n, 0] += shift
        if stretch != 1.0:
            x[:n, 1:3] *= stretch
        mask[: n - 1] = True
        return x, first, mask

    def batch(self, streams: list[list[tuple]], k: int):
        rows = [self._chunk(s[k] if k < len(s) else None) for s in streams]
        chunk = torch.stack([r[0] for r in rows])  # (B, L+1, 4)
        reset = torch.tensor([r[1] or k == 0 for r in rows])  # (B,)
        mask = torch.stack([r[2] for r in rows])  # (B, L)
        comp = torch.tensor([int(self.composer[s[k][0]]) if k < len(s) else 0 for s in streams])  # (B,)
        return PieceBatch(chunk, comp, reset, mask)

    def __iter__(self):
        rank, world = _rank_world()
        info = get_worker_info()
        if info is None:
            seed, worker, workers = int(torch.randint(0, 2**62, ())), 0, 1
        else:  # every worker rebuilds the same plan from the loader's base seed
            seed, worker, workers = info.seed - info.id, info.id, info.num_workers
        if self.train:
            streams = self._train_plan(np.random.default_rng(seed), world)
        else:
            streams = self._val_streams(world)
        mine = streams[rank * self.streams:(rank + 1) * self.streams]
        n = len(self)
        for k in range(worker, n, workers):
            yield self.batch(mine, k)


def mask_state(state, keep: torch.Tensor | None = None):
    """Detach a recurrent state (truncated BPTT) and zero its rows where ``keep`` is False.

    ``state`` is any nesting of tuples/lists of tensors with the batch on dim 1 (the LSTM layout
    (layers, B, H)); ``keep`` is (B,) bool, None = keep every row (detach only).
    """
    if state is None:
        return None
    if torch.is_tensor(state):
        if keep is None:
            return state.detach()
        return state.detach() * keep.view(1, -1, *([1] * (state.dim() - 2))).to(state.dtype)
    return type(state)(mask_state(s, keep) for s in state)
