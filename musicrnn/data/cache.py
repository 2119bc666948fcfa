"""Parse a folder of MIDI files once, in parallel, into one atomic cache of notes.

The cache holds every readable file's notes concatenated (struct of arrays + file offsets) and the
list of damaged files with reasons. It is keyed on the file list (path, size, mtime), the parse
options and ``CACHE_VERSION``; a changed key builds a new cache, and a partial cache is impossible
because it is written with ``atomic_write``.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from musicrnn.data.cachecheck import check_cache, empty_reason, skipped_line, unreadable_message
from musicrnn.diskspace import cache_error
from musicrnn.errors import ConfigError, MidiError
from musicrnn.io_utils import atomic_write, cache_dir
from musicrnn.midi.check import MIDI_SUFFIXES, files_under
from musicrnn.notes import Notes

CACHE_VERSION = 1
SPLITS = ("train", "validation", "test")
UNKNOWN_COMPOSER = "<unknown>"
SAMPLE_ROOT = Path(__file__).resolve().parents[1] / "sample_data"


@dataclass
class FileInfo:
    path: str  # relative to root
    split: str
    composer: str
    duration: float | None = None


@dataclass
class NoteCache:
    """All notes of a dataset: arrays concatenated over files; file k is offsets[k]:offsets[k+1]."""

    root: Path
    files: list[FileInfo]  # intact files only, aligned with offsets
    offsets: np.ndarray  # int64 (n_files + 1,)
    pitch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    velocity: np.ndarray
    damaged: list[tuple[str, str]]  # (relative path, reason)
    path: Path | None = None
    # files the fast reader left to pretty_midi, and why (known on the build only, not stored)
    fallbacks: list[tuple[str, str]] = field(default_factory=list)

    def notes(self, k: int) -> Notes:
        a, b = self.offsets[k], self.offsets[k + 1]
        return Notes(self.pitch[a:b], self.start[a:b], self.end[a:b], self.velocity[a:b])

    def stats(self) -> dict:
        out = {"root": str(self.root), "files": len(self.files), "notes": int(self.offsets[-1]),
               "damaged": len(self.damaged)}
        counts = np.diff(self.offsets)
        for split in SPLITS:
            idx = [k for k, f in enumerate(self.files) if f.split == split]
            out[split] = {"files": len(idx), "notes": int(counts[idx].sum()) if idx else 0}
        return out


def resolve_root(root: str | os.PathLike | None) -> Path:
    """None -> $MUSICRNN_DATA or the bundled sample. A missing or empty folder is a ConfigError."""
    if root is None or str(root) == "":
        root = os.environ.get("MUSICRNN_DATA") or SAMPLE_ROOT
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ConfigError(f"data folder {path} does not exist — pass --data.root PATH to a folder of "
                          f"MIDI files (e.g. MAESTRO v2.0.0; get it with `python -m musicrnn.data download`)")
    return path


def list_files(root: Path, seed: int = 0, val_fraction: float = 0.1) -> list[FileInfo]:
    """Files and their split: MAESTRO's official CSV split when present, else a seeded file split."""
    found, unreadable = files_under(root)
    for line in unreadable:
        print(f"warning: {line}", file=sys.stderr)
    present = [p.relative_to(root).as_posix() for p in found if p.suffix.lower() in MIDI_SUFFIXES]
    csvs = sorted(root.glob("maestro-v*.csv"))
    if csvs:
        with open(csvs[-1], newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        have = set(present)
        files = [FileInfo(r["midi_filename"], r["split"], r.get("canonical_composer") or UNKNOWN_COMPOSER,
                          float(r["duration"]) if r.get("duration") else None)
                 for r in rows if r["midi_filename"] in have]
    else:
        paths = sorted(present)
        rng = random.Random(seed)
        shuffled = paths[:]
        rng.shuffle(shuffled)
        n_val = max(1, round(len(paths) * val_fraction)) if len(paths) > 1 else 0
        val = set(shuffled[:n_val])
        files = [FileInfo(p, "validation" if p in val else "train", UNKNOWN_COMPOSER) for p in paths]
    if not files:
        raise ConfigError(f"data folder {root} has no MIDI files (*.mid, *.midi) — point --data.root "
                          f"at a folder of MIDI files")
    return sorted(files, key=lambda f: f.path)


def _key(root: Path, files: list[FileInfo], sustain: bool) -> str:
    h = hashlib.sha256(json.dumps({"v": CACHE_VERSION, "sustain": sustain}).encode())
    for f in files:
        st = (root / f.path).stat()
        h.update(f"{f.path}\0{f.split}\0{f.composer}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _parse(args: tuple[str, bool, bool]):
    path, sustain, fast = args
    try:
        n, fallback = Notes._read_midi(path, sustain, fast)
    except MidiError as e:
        return str(e)
    if len(n) == 0:
        return empty_reason(path)  # drums only, or no notes at all
    return n.pitch, n.start, n.end, n.velocity, fallback


def _progress(it, total: int, desc: str, enabled: bool):
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc=desc, unit="file", file=sys.stderr, dynamic_ncols=True)


def build_or_load(root: str | os.PathLike | None = None, sustain: bool = False, jobs: int | None = None,
                  progress: bool = True, cache_folder: str | os.PathLike | None = None,
                  verbose: bool = True, seed: int = 0, fast: bool = True) -> NoteCache:
    """Load the note cache for ``root``, building it first if needed (parallel, with progress).

    ``seed`` picks the file split of a folder without a MAESTRO CSV (it is part of the cache key).
    ``fast=False`` parses every file with pretty_midi (same notes, ~20x slower; for benchmarks).
    """
    root = resolve_root(root)
    files = list_files(root, seed)
    try:
        folder = Path(cache_folder) if cache_folder else cache_dir() / "notes"
    except OSError as e:  # $MUSICRNN_CACHE cannot be created
        raise cache_error(e.filename or os.environ.get("MUSICRNN_CACHE", "~/.cache/musicrnn"), e) from None
    path = folder / f"notes-{_key(root, files, sustain)}.npz"
    if path.exists():
        try:
            cache = _load(path, root, files)
        except Exception as e:  # unreadable or unsound cache: rebuild rather than fail
            print(f"musicrnn: ignoring unreadable cache {path} ({e}); rebuilding", file=sys.stderr)
        else:
            if verbose and cache.damaged:
                print(skipped_line(cache.root, cache.damaged, damaged_report_path(path)), file=sys.stderr)
            return cache
    t0 = time.perf_counter()
    jobs = jobs or min(len(files), os.cpu_count() or 1)
    work = [(str(root / f.path), sustain, fast) for f in files]
    if jobs > 1 and len(files) > 8:
        with get_context("spawn").Pool(jobs) as pool:
            results = list(_progress(pool.imap(_parse, work, chunksize=4), len(work), "parsing MIDI", progress))
    else:
        results = [_parse(w) for w in _progress(work, len(work), "parsing MIDI", progress)]
    keep, damaged, arrays, fallbacks = [], [], [], []
    for f, r in zip(files, results):
        if isinstance(r, str):
            damaged.append((f.path, r))
        else:
            keep.append(f)
            arrays.append(r)
            if r[4] and fast:
                fallbacks.append((f.path, r[4]))
    if not keep:
        raise ConfigError(unreadable_message(root, len(files), damaged))
    offsets = np.concatenate([[0], np.cumsum([len(a[0]) for a in arrays])]).astype(np.int64)
    cache = NoteCache(root, keep, offsets, *(np.concatenate([a[i] for a in arrays]) for i in range(4)),
                      damaged=damaged, path=path, fallbacks=fallbacks)
    try:
        _save(cache, path)
    except OSError as e:
        raise cache_error(folder, e) from None
    if verbose:
        _report(cache, time.perf_counter() - t0)
    return cache


def _report(cache: NoteCache, seconds: float) -> None:
    msg = (f"musicrnn: parsed {len(cache.files)} files, {int(cache.offsets[-1]):,} notes in {seconds:.1f}s; "
           f"cache {cache.path}")
    if cache.fallbacks:
        msg += f" ({len(cache.fallbacks)} files read by pretty_midi: {cache.fallbacks[0][1]}, ...)"
    if cache.damaged:
        msg += "\n" + skipped_line(cache.root, cache.damaged, damaged_report_path(cache.path))
    print(msg, file=sys.stderr)


def damaged_report_path(path: Path) -> Path:
    return path.with_suffix(".damaged.json")


def _save(cache: NoteCache, path: Path) -> None:
    meta = {"root": str(cache.root), "files": [f.__dict__ for f in cache.files], "damaged": cache.damaged,
            "version": CACHE_VERSION}
    with atomic_write(damaged_report_path(path), "w") as f:
        json.dump([{"file": p, "reason": r} for p, r in cache.damaged], f, indent=1)
    with atomic_write(path) as f:
        np.savez(f, offsets=cache.offsets, pitch=cache.pitch, start=cache.start, end=cache.end,
                 velocity=cache.velocity, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))


def _load(path: Path, root: Path, files: list[FileInfo]) -> NoteCache:
    """The cache at ``path``, checked against ``files`` (the data folder's list its key matched)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        arrays = {k: z[k] for k in z.files if k != "meta"}
    problem = check_cache(arrays, meta, [f.path for f in files])
    if problem:
        raise ValueError(problem)
    listed = {f.path: f for f in files}  # split and composer as the data folder says today
    keep = [listed[d["path"]] for d in meta["files"]]
    arrays = {k: arrays[k] for k in ("offsets", "pitch", "start", "end", "velocity")}
    return NoteCache(root, keep, damaged=[tuple(d) for d in meta["damaged"]], path=path, **arrays)
