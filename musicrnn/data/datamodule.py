"""``MaestroDataModule``: notes from the cache -> windows of ``seq_length + 1`` notes per file.

Each item is one window of raw features (seq_length + 1, 4): pitch, step, duration, velocity, plus
the file's composer id. The model splits it into inputs (first ``seq_length`` rows) and the target
(the next note), and scales the inputs, so the data stays model-agnostic. Windows never cross file
boundaries.

The command line over the data layer is ``python -m musicrnn.data`` (``musicrnn.cli.data``).
"""
from __future__ import annotations

import os

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from musicrnn.data.batches import REGIMES, WindowBatch
from musicrnn.data.cache import SPLITS, UNKNOWN_COMPOSER, NoteCache, build_or_load, list_files, resolve_root
from musicrnn.data.pieces import PieceChunks
from musicrnn.data.resumable import ResumableLoader
from musicrnn.errors import ConfigError
from musicrnn.notes import PIANO_HIGH, PIANO_LOW
from musicrnn.ranges import check_ranges


def note_features(cache: NoteCache, file_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) float32 features of the chosen files concatenated, and their (n_files + 1) offsets.

    step of each file's first note is 0, as in ``Notes.features``.
    """
    parts, offsets = [], [0]
    for k in file_ids:
        parts.append(cache.notes(k).features(velocity=True))
        offsets.append(offsets[-1] + len(parts[-1]))
    feats = np.concatenate(parts) if parts else np.zeros((0, 4), np.float32)
    return feats, np.asarray(offsets, np.int64)


class WindowDataset(Dataset):
    """Windows of ``seq_length + 1`` consecutive notes of one file: item k -> ((L+1, 4), composer)."""

    def __init__(self, features: np.ndarray, offsets: np.ndarray, composer_ids: np.ndarray, seq_length: int,
                 stride: int = 1, transpose: int = 0, time_stretch: float = 0.0):
        self.features = torch.from_numpy(features)
        self.seq_length, self.transpose, self.time_stretch = seq_length, transpose, time_stretch
        starts, owners = [], []
        for k in range(len(offsets) - 1):
            s = np.arange(offsets[k], offsets[k + 1] - seq_length, stride)  # s + L + 1 <= end
            starts.append(s)
            owners.append(np.full(len(s), composer_ids[k]))
        self.starts = torch.from_numpy(np.concatenate(starts) if starts else np.zeros(0, np.int64))
        self.composer = torch.from_numpy(np.concatenate(owners) if owners else np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, k: int):
        s = int(self.starts[k])
        w = self.features[s : s + self.seq_length + 1]  # (L+1, 4)
        if self.transpose or self.time_stretch:
            w = w.clone()
            if self.transpose:  # a random shift that keeps the whole window on the piano
                lo = max(-self.transpose, PIANO_LOW - int(w[:, 0].min()))
                hi = min(self.transpose, PIANO_HIGH - int(w[:, 0].max()))
                if hi >= lo:
                    w[:, 0] += int(torch.randint(lo, hi + 1, ()))
            if self.time_stretch:
                w[:, 1:3] *= 1.0 + self.time_stretch * (2 * float(torch.rand(())) - 1)
        return WindowBatch(w, self.composer[k])


class WindowShard(DistributedSampler):
    """DDP's training sampler of the windowed regime: each epoch draws ``num_samples`` windows (all when
    None) from ``seed`` and the epoch number (the same on every rank), and rank r takes every world-th.

    A ``DistributedSampler``, so Lightning leaves it in place (its own would train on every window each
    epoch, whatever ``train_windows_per_epoch`` says); Lightning calls ``set_epoch`` every epoch.
    """

    def __init__(self, dataset: Dataset, num_samples: int | None, seed: int, rank: int, world: int):
        super().__init__(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
        total = min(num_samples or len(dataset), len(dataset))
        self.per_rank = total // world  # every rank takes as many steps

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        chosen = torch.randperm(len(self.dataset), generator=g)[: self.per_rank * self.num_replicas]
        return iter(chosen[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.per_rank


class MaestroDataModule(L.LightningDataModule):
    """MAESTRO (or any folder of MIDI files) as windows of notes.

    Args:
        root: folder of MIDI files; None -> $MUSICRNN_DATA, else the bundled 10-file sample.
        seq_length: notes of context per window (the target is the note after them).
        batch_size: windows per batch.
        max_files: use at most this many files (a seeded choice, split proportions kept roughly).
        sustain: apply the sustain pedal (CC64) to note ends.
        stride: distance between window starts within a file (1 = every window).
        train_windows_per_epoch: if set, each epoch draws this many random training windows
            (a CPU epoch can then be minutes, not hours); None = all windows.
        val_windows: if set, validate/test on a fixed, seeded subset of this many windows.
        transpose: training-only augmentation: random shift of up to +-this many semitones.
        time_stretch: training-only augmentation: scale step and duration by 1 +- this fraction.
        num_workers: DataLoader workers (at most the CPUs this process may use).
        seed: seed for the file split (non-MAESTRO folders), max_files and val subsets.
        cache_dir: where the note cache goes; None -> $MUSICRNN_CACHE or ~/.cache/musicrnn.
        jobs: processes for the first parse; None -> all cores.
        regime: "windows" (the tutorial: random windows of ``seq_length`` notes, one batch row each)
            or "pieces" (whole-piece language-model training: every training file cut into
            consecutive chunks of ``seq_length`` notes, each note computed once per epoch, batch rows
            are streams walking through files so a recurrent core carries its state; see ``pieces``).
        val_window_length: context of the "next note after a full window" validation metrics
            (``val/...``); None = ``seq_length``. Set it to compare a pieces run with windowed runs.
        val_pieces: also validate on every note of the validation files with carried context
            (``val_piece/nll``, ``val_piece/pitch_ce``); None = on for the pieces regime.
    """

    def __init__(self, root: str | None = None, seq_length: int = 25, batch_size: int = 64,
                 max_files: int | None = None, sustain: bool = False, stride: int = 1,
                 train_windows_per_epoch: int | None = None, val_windows: int | None = None,
                 transpose: int = 0, time_stretch: float = 0.0, num_workers: int = 0, seed: int = 0,
                 cache_dir: str | None = None, jobs: int | None = None, regime: str = "windows",
                 val_window_length: int | None = None, val_pieces: bool | None = None):
        super().__init__()
        if regime not in REGIMES:
            raise ConfigError(f"data.regime must be one of {REGIMES}, got {regime!r}")
        check_ranges("data", locals())  # every numeric option, before anything is read or written
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if num_workers > cpus:  # each worker is a process holding a copy of the data
            raise ConfigError(f"--data.num_workers {num_workers}: this machine gives this run {cpus} CPUs — use at "
                              f"most {cpus} (0 = load batches in the training process)")
        self.save_hyperparameters()
        self.root = resolve_root(root)
        # The composer vocabulary is known before parsing so the model can be built first.
        self.composers = [UNKNOWN_COMPOSER] + sorted(
            {f.composer for f in list_files(self.root, seed)} - {UNKNOWN_COMPOSER})
        self.datasets: dict[str, WindowDataset] = {}
        self.pieces: dict[str, PieceChunks] = {}

    def _cache(self, progress: bool) -> NoteCache:
        h = self.hparams
        return build_or_load(self.root, sustain=h.sustain, jobs=h.jobs, progress=progress,
                             cache_folder=h.cache_dir, seed=h.seed, verbose=progress)  # report once

    def prepare_data(self) -> None:  # rank 0 only: parse once, write the cache
        self._cache(progress=True)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        h = self.hparams
        cache = self._cache(progress=False)
        ids = list(range(len(cache.files)))
        if h.max_files is not None and h.max_files < len(ids):
            ids = sorted(np.random.default_rng(h.seed).permutation(ids)[: h.max_files].tolist())
        comp_index = {c: i for i, c in enumerate(self.composers)}
        for split in SPLITS:
            chosen = [k for k in ids if cache.files[k].split == split]
            feats, offs = note_features(cache, chosen)
            comps = np.array([comp_index.get(cache.files[k].composer, 0) for k in chosen], np.int64)
            train = split == "train"
            length = h.seq_length if train else (h.val_window_length or h.seq_length)
            self.datasets[split] = WindowDataset(
                feats, offs, comps, length, stride=h.stride,
                transpose=h.transpose if train else 0, time_stretch=h.time_stretch if train else 0.0)
            if h.regime == "pieces" or (h.val_pieces and not train):
                self.pieces[split] = PieceChunks(feats, offs, comps, h.seq_length, h.batch_size, train,
                                                 transpose=h.transpose if train else 0,
                                                 time_stretch=h.time_stretch if train else 0.0)
        if h.regime == "pieces" and len(self.pieces["train"]) == 0:
            raise ConfigError(f"no training chunks in {self.root}: {h.batch_size} streams of {h.seq_length} notes "
                              f"need more notes — lower --data.seq_length or --data.batch_size")
        if len(self.datasets["train"]) == 0:
            raise ConfigError(f"no training windows in {self.root}: files are shorter than seq_length+1 = "
                              f"{h.seq_length + 1} notes or no file is in the train split — lower --data.seq_length")

    def split_dataloader(self, split: str) -> DataLoader:
        """The evaluation loader of any split: its windows (a seeded ``val_windows`` subset), in order."""
        return self._loader(split, False)

    def _loader(self, split: str, train: bool) -> DataLoader:
        h, ds = self.hparams, self.datasets[split]
        sampler = None
        world = self.trainer.world_size if self.trainer is not None else 1
        if train and world > 1:
            sampler = WindowShard(ds, h.train_windows_per_epoch, h.seed, self.trainer.global_rank, world)
        elif train and h.train_windows_per_epoch:
            sampler = RandomSampler(ds, replacement=False, num_samples=min(h.train_windows_per_epoch, len(ds)))
        elif not train and h.val_windows and h.val_windows < len(ds):
            g = torch.Generator().manual_seed(h.seed)
            ds = torch.utils.data.Subset(ds, torch.randperm(len(ds), generator=g)[: h.val_windows].sort().values)
        return DataLoader(ds, batch_size=h.batch_size, shuffle=train and sampler is None, sampler=sampler,
                          num_workers=h.num_workers, persistent_workers=h.num_workers > 0, drop_last=False)

    @property
    def validates_pieces(self) -> bool:
        h = self.hparams
        return h.val_pieces if h.val_pieces is not None else h.regime == "pieces"

    def _piece_loader(self, split: str) -> DataLoader:
        h = self.hparams
        return DataLoader(self.pieces[split], batch_size=None, num_workers=h.num_workers,
                          persistent_workers=h.num_workers > 0)

    def train_dataloader(self):
        """The training loader, resumable mid-epoch (``ResumableLoader``: Lightning checkpoints its position).

        Under DDP each rank's share comes from ``WindowShard`` (windows) or ``PieceChunks`` (streams).
        """
        loader = self._piece_loader("train") if self.hparams.regime == "pieces" else self._loader("train", True)
        return ResumableLoader(loader)

    def val_dataloader(self):
        if len(self.datasets["validation"]) == 0:
            return []
        windows = self._loader("validation", False)
        if self.validates_pieces and "validation" in self.pieces and len(self.pieces["validation"]):
            return [windows, self._piece_loader("validation")]  # dataloader_idx 0, 1
        return windows

    def test_dataloader(self):
        if len(self.datasets["test"]) == 0:
            raise ConfigError(f"{self.root} has no test split — use a MAESTRO folder with its CSV")
        return self._loader("test", False)
