"""Prime sources: the notes a generation starts from (a MIDI file, a dataset window, the bundled sample)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicrnn.errors import ConfigError, MidiError
from musicrnn.notes import Notes


def _from_zero(notes: Notes) -> Notes:
    return notes.shifted(-float(notes.start[0])) if len(notes) else notes


def prime_from_midi(path: str | Path, seq_length: int, *, at: str = "end", sustain: bool = False) -> Notes:
    """``seq_length`` notes of any MIDI file (all non-drum tracks merged), shifted to start at 0.

    at: "end" (the last notes: the model continues the piece) or "start" (its opening).
    Raises MidiError if the file has fewer than ``seq_length`` notes (no padding, see module doc).
    """
    if at not in ("start", "end"):
        raise ConfigError(f"prime position must be 'start' or 'end', got {at!r}")
    notes = Notes.from_midi(path, sustain=sustain)
    if len(notes) < seq_length:
        raise MidiError(f"{path}: has {len(notes)} notes (drums excluded) but the model needs a prime of "
                        f"{seq_length} — use a longer MIDI file or --prime-split validation")
    return _from_zero(notes[-seq_length:] if at == "end" else notes[:seq_length])


@dataclass
class PrimeWindow:
    """A prime drawn from a dataset, and where it came from (for messages and composer defaults)."""

    notes: Notes
    file: str
    composer: str
    first_note: int


def pick_window(root: str | Path | None = None, split: str = "validation", seed: int | None = 0,
                seq_length: int = 25, *, sustain: bool = False, cache_dir: str | Path | None = None,
                progress: bool = False) -> PrimeWindow:
    """A random ``seq_length``-note window of one file of ``split`` (via the note cache), seeded.

    The first call on a dataset parses it into the note cache (minutes for full MAESTRO; ``progress``).
    """
    from musicrnn.data.cache import SPLITS, build_or_load

    if split not in SPLITS:
        raise ConfigError(f"--prime-split must be one of {SPLITS}, got {split!r}")
    cache = build_or_load(root, sustain=sustain, progress=progress, cache_folder=cache_dir)
    counts = np.diff(cache.offsets)
    ok = [k for k, f in enumerate(cache.files) if f.split == split and counts[k] >= seq_length]
    if not ok:
        raise ConfigError(f"{cache.root}: no {split} file has {seq_length} notes — use another --prime-split "
                          f"or --data-root")
    rng = np.random.default_rng(seed)
    k = ok[int(rng.integers(len(ok)))]
    first = int(rng.integers(counts[k] - seq_length + 1))
    notes = cache.notes(k)[first:first + seq_length]
    return PrimeWindow(_from_zero(notes), cache.files[k].path, cache.files[k].composer, first)


def prime_from_dataset(root: str | Path | None = None, split: str = "validation", seed: int | None = 0,
                       seq_length: int = 25, **kw) -> Notes:
    """Notes of ``pick_window`` (root None -> $MUSICRNN_DATA or the bundled sample)."""
    return pick_window(root, split, seed, seq_length, **kw).notes


def prime_bundled(seed: int | None = 0, seq_length: int = 25, **kw) -> Notes:
    """A random validation window of the bundled 10-file MAESTRO sample (works on a fresh clone)."""
    from musicrnn.data.cache import SAMPLE_ROOT

    return prime_from_dataset(SAMPLE_ROOT, "validation", seed, seq_length, **kw)
