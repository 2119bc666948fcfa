"""Prime sources: the notes a generation starts from (a MIDI file, a dataset window, the bundled sample)."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicrnn.errors import ConfigError, MidiError
from musicrnn.notes import Notes


def from_zero(notes: Notes) -> Notes:
    """The notes shifted so the first starts at 0 s."""
    return notes.shifted(-float(notes.start[0])) if len(notes) else notes


# Parsing takes ~125 bytes of memory per byte of MIDI (a 50 MB file peaked at 7.9 GB). MAESTRO's largest
# piece is 0.42 MB, so this is ten times any real performance and bounds the parse to ~0.5 GB.
MAX_PRIME_BYTES = 4_000_000


def check_prime_file(path: str | Path) -> None:
    """MidiError unless ``path`` is a regular file of at most ``MAX_PRIME_BYTES`` (``/dev/zero`` or a pipe
    would be read without end); a missing file is left to the MIDI reader's message."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        raise MidiError(f"{path}: not a regular file (a device or pipe is read without end) — pass a MIDI file")
    if st.st_size > MAX_PRIME_BYTES:
        raise MidiError(f"{path}: {st.st_size / 1e6:.1f} MB is more than a prime is read from (at most "
                        f"{MAX_PRIME_BYTES / 1e6:.0f} MB, ten times MAESTRO's largest piece) — pass a shorter MIDI "
                        f"file (only its first or last notes are used)")


def prime_from_midi(path: str | Path, seq_length: int, *, at: str = "end", sustain: bool = False) -> Notes:
    """``seq_length`` notes of any MIDI file (all non-drum tracks merged), shifted to start at 0.

    at: "end" (the last notes: the model continues the piece) or "start" (its opening).
    Raises MidiError if the file has fewer than ``seq_length`` notes (no padding, see module doc), is not a
    regular file or is larger than ``MAX_PRIME_BYTES``.
    """
    if at not in ("start", "end"):
        raise ConfigError(f"prime position must be 'start' or 'end', got {at!r}")
    check_prime_file(path)
    notes = Notes.from_midi(path, sustain=sustain)
    if len(notes) < seq_length:
        raise MidiError(f"{path}: has {len(notes)} notes (drums excluded) but the model needs a prime of "
                        f"{seq_length} — use a longer MIDI file or --prime-split validation")
    return from_zero(notes[-seq_length:] if at == "end" else notes[:seq_length])


@dataclass
class PrimeWindow:
    """A prime drawn from a dataset, and where it came from (for messages and composer defaults)."""

    notes: Notes
    file: str
    composer: str
    first_note: int


def pick_window(root: str | Path | None = None, split: str | None = "validation", seed: int | None = 0,
                seq_length: int = 25, *, sustain: bool = False, cache_dir: str | Path | None = None,
                progress: bool = False) -> PrimeWindow:
    """A random ``seq_length``-note window of one file of ``split`` (None: of every split; via the note
    cache), seeded: the file is drawn uniformly, then the window's first note.

    The first call on a dataset parses it into the note cache (minutes for full MAESTRO; ``progress``).
    """
    from musicrnn.data.cache import SPLITS, build_or_load

    if split is not None and split not in SPLITS:
        raise ConfigError(f"--prime-split must be one of {SPLITS}, got {split!r}")
    cache = build_or_load(root, sustain=sustain, progress=progress, cache_folder=cache_dir)
    counts = np.diff(cache.offsets)
    ok = [k for k, f in enumerate(cache.files) if split in (None, f.split) and counts[k] >= seq_length]
    if not ok:
        raise ConfigError(f"{cache.root}: no {split or 'dataset'} file has {seq_length} notes — use another "
                          f"--prime-split or --data-root")
    rng = np.random.default_rng(seed)
    k = ok[int(rng.integers(len(ok)))]
    first = int(rng.integers(counts[k] - seq_length + 1))
    notes = cache.notes(k)[first:first + seq_length]
    return PrimeWindow(from_zero(notes), cache.files[k].path, cache.files[k].composer, first)


def prime_from_dataset(root: str | Path | None = None, split: str = "validation", seed: int | None = 0,
                       seq_length: int = 25, **kw) -> Notes:
    """Notes of ``pick_window`` (root None -> $MUSICRNN_DATA or the bundled sample)."""
    return pick_window(root, split, seed, seq_length, **kw).notes


def prime_bundled(seed: int | None = 0, seq_length: int = 25, **kw) -> Notes:
    """A random validation window of the bundled 10-file MAESTRO sample (works on a fresh clone)."""
    from musicrnn.data.cache import SAMPLE_ROOT

    return prime_from_dataset(SAMPLE_ROOT, "validation", seed, seq_length, **kw)


def real_excerpts(data_root: str | None, seq_length: int, num_notes: int, count: int, split: str = "test",
                  seed: int = 0, sustain: bool = False) -> list[tuple[Notes, Notes]]:
    """``count`` seeded (prime, continuation) pairs from the split: prime = seq_length notes, then
    the real next ``num_notes`` notes, each pair from one file."""
    from musicrnn.data.cache import build_or_load

    cache = build_or_load(data_root, sustain=sustain, progress=False, verbose=False)
    ids = [k for k, f in enumerate(cache.files) if f.split == split
           and cache.offsets[k + 1] - cache.offsets[k] >= seq_length + num_notes]
    if not ids:
        raise ConfigError(f"no {split} file has {seq_length + num_notes} notes — lower --num-notes")
    rng = np.random.default_rng(seed)
    pairs = []
    for k in rng.choice(ids, size=count, replace=len(ids) < count):
        notes = cache.notes(int(k))
        i = int(rng.integers(seq_length, len(notes) - num_notes + 1))
        pairs.append((notes[i - seq_length: i], notes[i: i + num_notes]))
    return pairs
