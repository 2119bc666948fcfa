"""The one choice of evaluation windows and primes: the data module's (splits, ``stride``, the seeded
``val_windows`` subset), so the metrics, the floor, the ceiling and the sample primes all see the same
notes a training run validates on.

Only this module reads the data module's datasets; the rest of ``evaluation`` asks it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from musicrnn.data.datamodule import MaestroDataModule
from musicrnn.errors import ConfigError
from musicrnn.notes import Notes


def data_module(root: str | None, window: int, *, split: str = "test", max_windows: int | None = None,
                batch_size: int = 256, stride: int = 1, sustain: bool = False, seed: int = 0,
                pieces: bool = False) -> MaestroDataModule:
    """A prepared data module whose ``split`` windows hold ``window`` notes of context plus the next note.

    ``pieces``: also cut whole files into chunks of ``window`` notes (the whole-piece regime), so the
    train split's files are available as pieces too.
    """
    dm = MaestroDataModule(root=root, seq_length=window, batch_size=batch_size, stride=stride, sustain=sustain,
                           val_windows=max_windows, seed=seed, regime="pieces" if pieces else "windows",
                           val_pieces=pieces or None)
    dm.prepare_data()
    try:
        dm.setup()
    except ConfigError:  # its message speaks of training options; here the window is ours
        raise ConfigError(f"{dm.root}: too few notes for windows of {window + 1} notes in its training split "
                          f"— use fewer notes (e.g. --num-notes, --long-notes, --prime-length)") from None
    if len(dm.datasets[split]) == 0:
        raise ConfigError(f"{dm.root} has no windows of {window + 1} notes in the {split!r} split — use MAESTRO "
                          f"with its CSV, another --split, or fewer notes")
    return dm


def window_starts(dm: MaestroDataModule, split: str) -> np.ndarray:
    """Absolute note indices (into the split's files concatenated) of the windows the data module
    evaluates ``split`` on, in order: every ``stride``-th start, then the seeded ``val_windows`` subset."""
    ds = dm.split_dataloader(split).dataset
    if isinstance(ds, torch.utils.data.Subset):
        return ds.dataset.starts[torch.as_tensor(ds.indices)].numpy()
    return ds.starts.numpy()


def split_pitches(dm: MaestroDataModule, split: str) -> np.ndarray:
    """Pitch of every note of the split's files concatenated (the index space of ``window_starts``)."""
    return dm.datasets[split].features[:, 0].numpy().astype(np.int64)


def split_files(dm: MaestroDataModule, split: str) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """(features (N, 4), offsets (files + 1,), composer ids (files,)) of the split's whole files; needs a
    data module made with ``pieces=True`` (or the train split of a whole-piece one)."""
    if split not in dm.pieces:
        raise ConfigError(f"whole files of the {split!r} split were not prepared (data module without pieces)")
    p = dm.pieces[split]
    return p.features, p.offsets, p.composer


def composer_lookup(dm: MaestroDataModule, net) -> tuple[torch.Tensor | None, str | None]:
    """(data composer id -> network composer id, a note) for a composer-conditioned network, matched by
    name: a composer the network was not trained on becomes 0 (unknown). (None, None) without conditioning.
    """
    if net.composer_emb is None:
        return None, None
    known = {name: i for i, name in enumerate(net.composers)}
    lookup = torch.tensor([known.get(name, 0) for name in dm.composers], dtype=torch.long)
    unknown = [name for name in dm.composers[1:] if name not in known]
    note = None
    if unknown:
        note = (f"{len(unknown)} of the {len(dm.composers) - 1} composers in {dm.root} are not among the "
                f"{max(len(net.composers) - 1, 0)} the model was trained on (e.g. {unknown[0]}): their files are "
                f"scored as composer unknown (0)")
    return lookup, note


@dataclass(frozen=True)
class PrimePair:
    """A real prime (from 0 s) and what the pianist played next (times from the prime's last onset, as
    ``sampling.generator.generate`` returns a continuation), from one window of one file."""

    prime: Notes
    continuation: Notes
    composer: str


class RealWindows:
    """The data module's windows of ``length`` notes of one split, drawn as seeded, non-overlapping sets."""

    def __init__(self, root: str | None, split: str, length: int, *, stride: int = 1, sustain: bool = False):
        self.dm = data_module(root, length - 1, split=split, batch_size=1, stride=stride, sustain=sustain)
        self.split, self.length = split, length
        self.dataset = self.dm.datasets[split]

    def draw(self, count: int, seed: int) -> list[tuple[Notes, str]]:
        """``count`` (notes, composer) windows that share no note; fewer when the split has no room."""
        starts = self.dataset.starts.numpy()
        rng = np.random.default_rng(seed)
        chosen: list[int] = []
        for k in rng.permutation(len(starts)):
            if all(abs(int(starts[k]) - int(starts[j])) >= self.length for j in chosen):
                chosen.append(int(k))
                if len(chosen) == count:
                    break
        out = []
        for k in chosen:
            s = int(starts[k])
            f = self.dataset.features[s: s + self.length].numpy().copy()
            f[0, 1] = 0.0  # the first note starts at 0 s
            notes = Notes.from_features(f)
            out.append((notes, self.dm.composers[int(self.dataset.composer[k])]))
        return out


def prime_pairs(root: str | None, split: str, prime_length: int, num_notes: int, count: int, *, seed: int = 0,
                stride: int = 1, sustain: bool = False) -> list[PrimePair]:
    """``count`` seeded, non-overlapping windows of ``prime_length + num_notes`` notes of the split (the
    data module's windows, ``stride`` included), each cut into prime and continuation.

    Fewer when the split has no room for ``count`` disjoint windows; ConfigError when it has none.
    """
    windows = RealWindows(root, split, prime_length + num_notes, stride=stride, sustain=sustain)
    return [PrimePair(n[:prime_length], _after(n, prime_length), c) for n, c in windows.draw(count, seed)]


def _after(notes: Notes, k: int) -> Notes:
    """Notes k.. with times from note k - 1's onset, as ``generate`` returns a continuation."""
    return notes[k:].shifted(-float(notes.start[k - 1])) if k else notes[k:]
