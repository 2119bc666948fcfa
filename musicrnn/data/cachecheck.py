"""What the note cache must hold before training trusts it, and what to say about unreadable files.

``check_cache`` validates the arrays of a loaded cache (a valid zip can still hold pitch 200, NaN
onsets, arrays of unequal length or offsets that do not add up: the cache file may be damaged,
hand-edited or written by another version). It returns the first problem as text, or None; the
caller then rebuilds the cache with one line saying why (``cache.build_or_load``).

``unreadable_message`` / ``skipped_line`` name the actual reason of each file the parse skipped and
suggest ``musicrnn.data repair`` only for line-ending damage, the one thing repair fixes.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

LINE_ENDING = "line-ending damage"  # the words midi.check uses for repairable files only
REPAIR = "python -m musicrnn.data repair"
ARRAYS = ("offsets", "pitch", "start", "end", "velocity")


def check_cache(arrays: dict[str, np.ndarray], meta: dict, files: list[str]) -> str | None:
    """The first reason the cache contents cannot be used, or None if they are sound.

    ``files``: the relative paths the cache is keyed on; the cache must account for each of them
    once, as intact (with notes) or as damaged (with a reason).
    """
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        return f"array {missing[0]} is missing"
    if any(np.ndim(arrays[k]) != 1 for k in ARRAYS):
        return "arrays are not one-dimensional"
    pitch, start, end, velocity, offsets = (arrays[k] for k in ("pitch", "start", "end", "velocity", "offsets"))
    n = len(pitch)
    if not (len(start) == len(end) == len(velocity) == n):
        return (f"note arrays have unequal lengths (pitch {n}, start {len(start)}, end {len(end)}, "
                f"velocity {len(velocity)})")
    kept = [d.get("path") for d in meta.get("files", [])]
    damaged = [d[0] for d in meta.get("damaged", [])]
    if sorted(kept + damaged) != sorted(files):
        return "its file list does not match the data folder"
    if not np.issubdtype(offsets.dtype, np.integer) or len(offsets) != len(kept) + 1:
        return f"offsets do not match its {len(kept)} files"
    if len(offsets) and (offsets[0] != 0 or offsets[-1] != n or np.any(np.diff(offsets) <= 0)):
        return f"offsets do not add up to its {n:,} notes"
    for name, arr, lo, hi in (("pitch", pitch, 0, 127), ("velocity", velocity, 1, 127)):
        if not np.issubdtype(arr.dtype, np.integer):
            return f"{name} is not integer"
        if n and (arr.min() < lo or arr.max() > hi):
            return f"{name} outside {lo}..{hi} (found {int(arr.min())}..{int(arr.max())})"
    if not (np.all(np.isfinite(start)) and np.all(np.isfinite(end))):
        return "note times are not finite (NaN or Inf)"
    if np.any(end <= start):
        return "a note ends before it starts"
    step = np.diff(start)
    inside = np.ones(len(step), bool)
    inside[offsets[1:-1] - 1] = False  # a file's first note may start before the previous file's last
    if np.any(step[inside] < 0):
        return "notes are not sorted by onset within a file"
    return None


def empty_reason(path: str | os.PathLike) -> str:
    """Why a file that parsed gave no notes: drums only, or no notes at all."""
    import pretty_midi

    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(str(path))
        drums = any(i.is_drum and i.notes for i in pm.instruments)
    except Exception:  # it parsed a moment ago; do not fail on the explanation
        drums = False
    if drums:
        return f"{path}: drums only (channel 10), no piano notes — use a piano MIDI file"
    return f"{path}: no notes at all — the file is empty of music; remove it from the folder"


def _repairable(reasons: list[str]) -> bool:
    return any(LINE_ENDING in r for r in reasons)


def unreadable_message(root: Path, n_files: int, damaged: list[tuple[str, str]], shown: int = 3) -> str:
    """One line: no file could be read, the reason of the first few, and the fix that applies."""
    reasons = [r for _, r in damaged]
    first = "; ".join(reasons[:shown]) + (f"; and {len(reasons) - shown} more" if len(reasons) > shown else "")
    fix = (f"repair the line-ending-damaged ones with `{REPAIR} {root} DST`" if _repairable(reasons)
           else "point --data.root at a folder of piano MIDI files")
    return f"data folder {root}: none of its {n_files} MIDI files could be read ({first}) — {fix}"


def skipped_line(root: Path, damaged: list[tuple[str, str]], report: Path) -> str:
    """The line printed whenever a cache with skipped files is used (built or loaded)."""
    kinds = Counter(_kind(r) for _, r in damaged)
    what = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
    files = "file it" if len(damaged) == 1 else "files it"
    line = f"musicrnn: skipped {len(damaged)} {files} could not use ({what}; list: {report})"
    if _repairable([r for _, r in damaged]):
        line += f"; repair the line-ending-damaged ones with `{REPAIR} {root} DST`"
    return line


def _kind(reason: str) -> str:
    for words, kind in ((LINE_ENDING, "line-ending damage"), ("drums only", "drums only"),
                        ("no notes", "no notes"), ("not a Standard MIDI File", "not MIDI"),
                        ("empty file", "empty"), ("truncated", "truncated")):
        if words in reason:
            return kind
    return "damaged"
