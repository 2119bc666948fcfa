"""Repair ONE MIDI file: ``python -m musicrnn.data repair FILE DST`` (the path the damaged-file hint names).

Why: the damaged-file hint sends users to ``repair``, which only took folders ("repair source … is
not a folder"). A single file is repaired with ``musicrnn.midi.repair.repair_bytes``; MAESTRO's expected
duration (which settles ambiguous restorations) is looked up in a ``maestro-v*.csv`` in any folder
above the file. DST is a folder (the file keeps its name there) or a file name; SRC is only read, the
write is atomic, and an unrepairable file is one ``error:`` line with nothing written.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from musicrnn.diskspace import destination_error
from musicrnn.errors import ConfigError
from musicrnn.io_utils import atomic_write
from musicrnn.midi.repair import repair_bytes


def _expected_duration(src: Path) -> float | None:
    """MAESTRO's ``duration`` of ``src`` from a ``maestro-v*.csv`` in one of its parent folders."""
    for folder in src.resolve().parents:
        for table in sorted(folder.glob("maestro-v*.csv")):
            rel = src.resolve().relative_to(folder).as_posix()
            with open(table, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    if row.get("midi_filename") == rel and row.get("duration"):
                        return float(row["duration"])
    return None


def repair_one(src: str | Path, dst: str | Path) -> dict:
    """Write the repaired (or intact) copy of ``src`` to ``dst`` (a folder, existing or given with a
    trailing slash, or a file name); report it."""
    folder = str(dst).endswith(("/", os.sep))  # (Path() drops a trailing slash)
    src, dst = Path(src), Path(dst)
    if folder or dst.is_dir():
        dst = dst / src.name
    if dst.exists() and dst.resolve() == src.resolve():
        raise ConfigError(f"repair destination {dst} is the source file — choose another DST (SRC is never changed)")
    try:
        data = src.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {src} ({e.strerror}) — pass a readable MIDI file") from None
    fixed = repair_bytes(data, _expected_duration(src), str(src))  # MidiError (one line) if it cannot
    try:
        with atomic_write(dst) as f:
            f.write(fixed)
    except OSError as e:  # full or read-only: one line, any earlier dst kept (the write is atomic)
        raise destination_error("repair destination", dst.parent, e, "free space there or choose another DST") from None
    return {"file": str(src), "out": str(dst), "status": "intact" if fixed is data else "repaired"}
