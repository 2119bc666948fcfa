"""Standard MIDI File chunk checks (the only place that looks at raw MIDI bytes).

Owner of repair of line-ending damage: see ``repair_bytes`` / ``repair_tree`` (to be extended).
"""
from __future__ import annotations

import struct
from pathlib import Path

from .errors import MidiError

REPAIR_HINT = "repair it with `python -m musicrnn.data repair SRC DST`"


def check_chunks(data: bytes, name: str = "<bytes>") -> None:
    """Raise MidiError unless ``data`` is a chunk-wise well-formed Standard MIDI File."""
    if len(data) == 0:
        raise MidiError(f"{name}: empty file — not a MIDI file")
    if data[:4] != b"MThd" or len(data) < 14:
        raise MidiError(f"{name}: not a Standard MIDI File (no MThd header)")
    hlen, fmt, ntracks, _division = struct.unpack(">IHHH", data[4:14])
    if hlen < 6 or fmt > 2:
        raise MidiError(f"{name}: bad MIDI header (length {hlen}, format {fmt})")
    pos, found = 8 + hlen, 0
    while pos + 8 <= len(data) and found < ntracks:
        cid, clen = data[pos : pos + 4], struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        end = pos + 8 + clen
        if end > len(data):
            short = end - len(data)
            raise MidiError(
                f"{name}: track {found} is {short} bytes shorter than its header says "
                f"(line-ending damage?) — {REPAIR_HINT}"
            )
        if cid == b"MTrk":
            found += 1
        pos = end
    if found < ntracks:
        raise MidiError(f"{name}: header declares {ntracks} tracks, file has {found} — {REPAIR_HINT}")
    if ntracks == 0:
        raise MidiError(f"{name}: MIDI file has no tracks — nothing to read")


def read_checked(path: str | Path) -> bytes:
    """Read a MIDI file's bytes and check its chunks; MidiError on a missing or damaged file."""
    path = Path(path)
    if not path.exists():
        raise MidiError(f"{path}: no such MIDI file — check the path")
    if path.is_dir():
        raise MidiError(f"{path}: is a folder, not a MIDI file")
    data = path.read_bytes()
    check_chunks(data, str(path))
    return data
