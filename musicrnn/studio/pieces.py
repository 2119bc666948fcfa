"""What the studio offers to choose from: pieces to prime with (composer, title, file) and checkpoints."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from musicrnn.data.cache import resolve_root
from musicrnn.errors import MusicRNNError

MIDI_SUFFIXES = (".mid", ".midi")
PRETRAINED = "pretrained"


@dataclass(frozen=True)
class PieceFile:
    """One MIDI file of a dataset, with the names a person recognises it by."""

    composer: str
    title: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.composer} — {self.title}"


def list_pieces(root: str | Path | None = None) -> list[PieceFile]:
    """The pieces of a dataset folder (None: $MUSICRNN_DATA, else the bundled MAESTRO sample), sorted by
    composer and title: MAESTRO's CSV names them; a folder without one lists its MIDI files by name."""
    folder = resolve_root(root)
    csvs = sorted(folder.glob("maestro-v*.csv"))
    if csvs:
        with open(csvs[-1], newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        found = [PieceFile(r.get("canonical_composer") or "unknown", r.get("canonical_title") or r["midi_filename"],
                           folder / r["midi_filename"]) for r in rows]
    else:
        found = [PieceFile("unknown", p.stem, p) for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES]
    pieces = sorted((p for p in found if p.path.is_file()), key=lambda p: (p.composer, p.title, str(p.path)))
    if not pieces:
        raise MusicRNNError(f"{folder}: no MIDI files — pass --data-root PATH to a folder of MIDI files")
    return _unique_labels(pieces)


def _unique_labels(pieces: list[PieceFile]) -> list[PieceFile]:
    """Number repeated (composer, title) pairs (MAESTRO has several performances of some pieces)."""
    seen: dict[str, int] = {}
    out = []
    for p in pieces:
        seen[p.label] = seen.get(p.label, 0) + 1
        out.append(p if seen[p.label] == 1 else PieceFile(p.composer, f"{p.title} ({seen[p.label]})", p.path))
    return out




def checkpoint_choices(folder: str | Path = "checkpoints", extra: str | None = None) -> list[str]:
    """``pretrained``, ``extra`` (the --ckpt given) and every ``.ckpt`` under ``folder`` (newest first)."""
    found = sorted(Path(folder).rglob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True) \
        if Path(folder).is_dir() else []
    choices = [PRETRAINED] + ([extra] if extra and extra != PRETRAINED else [])
    return choices + [str(p) for p in found if str(p) not in choices]
