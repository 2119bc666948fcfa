"""The strict check of a Standard MIDI File (through the one event walker, ``events``).

Why a strict check: 309 of MAESTRO v2.0.0's files went through a CR-LF -> LF conversion that deleted
every 0x0D byte in front of a 0x0A byte. Such a file still *looks* like MIDI, and lenient readers
silently mis-time or drop notes. ``check_chunks`` therefore parses every track's events and insists
that they end (with end-of-track) exactly where the track header says. It runs on every file during
cache builds, so channel-event runs are matched by one compiled regex (C speed) and only meta/sysex
events are stepped through in Python.

The repair of that damage is ``repair`` (one file) and ``tree`` (a folder).
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

from ..errors import MidiError
from .events import BadEvent, BadValue, header, parse_track

MIDI_SUFFIXES = (".mid", ".midi")
REPAIR_HINT = "repair it with `python -m musicrnn.data repair SRC DST`"


def _chunk_at(data: bytes, pos: int, k: int, name: str) -> tuple[bytes, int, int]:
    """The chunk header at ``pos``: (id, data start, declared end); MidiError on garbage."""
    cid, clen = data[pos : pos + 4], struct.unpack(">I", data[pos + 4 : pos + 8])[0]
    if cid != b"MTrk" and not all(0x41 <= c <= 0x7A for c in cid):
        raise MidiError(f"{name}: garbage where track {k} should start (byte {pos}) — {REPAIR_HINT}")
    return cid, pos + 8, pos + 8 + clen


def _bytes(n: int) -> str:
    return f"{n} byte" if n == 1 else f"{n} bytes"


def _line_ending_damage_possible(data: bytes, start: int, stop: int, missing: int) -> bool:
    """CR-LF -> LF damage deletes one 0x0D in front of each of some 0x0A bytes, so a track that lost
    ``missing`` bytes that way still holds at least ``missing`` 0x0A bytes in ``data[start:stop]``."""
    return data.count(b"\n", start, stop) >= missing


def check_chunks(data: bytes, name: str = "<bytes>") -> None:
    """Raise MidiError unless ``data`` is a well-formed Standard MIDI File, event by event.

    Every MTrk must parse (delta times, running status, channel data bytes < 0x80, meta and sysex
    lengths, a tempo above 0) and its end-of-track event must be its last byte. A track that ends
    early is the signature of line-ending damage when it holds enough 0x0A bytes to have lost that
    many 0x0D bytes: only then does the message name that damage and the repair. Chunks after the
    declared number of tracks are ignored (as every reader does).
    """
    ntracks, pos = header(data, name)
    k = 0
    while k < ntracks and pos + 8 <= len(data):
        cid, start, end = _chunk_at(data, pos, k, name)
        pos = end
        if cid != b"MTrk":
            continue
        try:
            stop = parse_track(data, start, min(end, len(data)))
        except BadValue as e:
            raise MidiError(f"{name}: track {k} has {e.args[0]} (byte {e.args[1]}) — the file is damaged; "
                            f"re-download it or re-export it from its editor") from None
        except BadEvent as e:
            why, where = e.args
            missing = end - len(data)
            if missing > 0 and _line_ending_damage_possible(data, start, len(data), missing):
                raise MidiError(
                    f"{name}: track {k} is {_bytes(missing)} shorter than its header says "
                    f"(line-ending damage or truncation) — {REPAIR_HINT}"
                ) from None
            if missing > 0:
                raise MidiError(f"{name}: track {k} is cut off {_bytes(missing)} before the end its header "
                                f"gives — the file is truncated; re-download it") from None
            hint = f"re-download it or {REPAIR_HINT}" if b"\n" in data[start:end] else "re-download it"
            raise MidiError(f"{name}: track {k} is malformed ({why} at byte {where}) — the file is damaged; "
                            f"{hint}") from None
        if stop != end:
            if _line_ending_damage_possible(data, start, stop, end - stop):
                raise MidiError(
                    f"{name}: track {k} is {_bytes(end - stop)} shorter than its header says "
                    f"(line-ending damage) — {REPAIR_HINT}"
                )
            raise MidiError(
                f"{name}: track {k} ends {_bytes(end - stop)} before the length its header gives (its length "
                f"field is wrong) — the file is damaged; re-download it"
            )
        k += 1
    if k < ntracks:
        raise MidiError(
            f"{name}: header declares {ntracks} tracks, file has {k} — the file is truncated; re-download it"
        )


def read_checked(path: str | Path) -> bytes:
    """Read a MIDI file's bytes and check it; MidiError on a missing or damaged file."""
    path = Path(path)
    if not path.exists():
        raise MidiError(f"{path}: no such MIDI file — check the path")
    if path.is_dir():
        raise MidiError(f"{path}: is a folder, not a MIDI file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MidiError(f"{path}: cannot be read ({e.strerror}) — check its permissions") from None
    check_chunks(data, str(path))
    return data


def files_under(root: str | Path) -> tuple[list[Path], list[str]]:
    """Every file under ``root`` (sorted; symlinked folders followed), and one line per folder that
    could not be read, naming it and the fix: a data run or a repair must say what it left out,
    never skip a folder silently (``Path.rglob`` does)."""
    unreadable: list[str] = []

    def note(e: OSError) -> None:
        unreadable.append(f"folder {e.filename} cannot be read ({e.strerror}), so its files are left out "
                          f"— give this user read access to it (chmod -R u+rX) or move it out of {root}")

    found = [Path(folder) / name for folder, _, names in os.walk(root, onerror=note, followlinks=True)
             for name in names if os.path.isfile(os.path.join(folder, name))]  # no FIFOs, no broken links
    return sorted(found), unreadable
