"""Standard MIDI File checks and line-ending repair (the only place that looks at raw MIDI bytes).

Why a strict check: 309 of MAESTRO v2.0.0's files went through a CR-LF -> LF conversion that deleted
every 0x0D byte in front of a 0x0A byte. Such a file still *looks* like MIDI, and lenient readers
silently mis-time or drop notes. ``check_chunks`` therefore parses every track's events and insists
that they end (with end-of-track) exactly where the track header says. It runs on every file during
cache builds, so channel-event runs are matched by one compiled regex (C speed) and only meta/sysex
events are stepped through in Python.

The repair of that damage (``repair_bytes`` / ``repair_tree``) lives in ``midirepair``; its public
names are re-exported here (lazily: ``midirepair`` imports this module).
"""
from __future__ import annotations

import re
import struct
from pathlib import Path

from .errors import MidiError

REPAIR_HINT = "repair it with `python -m musicrnn.data repair SRC DST`"

# Data bytes that follow a channel status byte 0x80..0xEF (index: status >> 4).
_DATA_LEN = {8: 2, 9: 2, 10: 2, 11: 2, 12: 1, 13: 1, 14: 2}

_DELTA = rb"[\x80-\xff]{0,3}[\x00-\x7f]"
_RUN2 = rb"(?:" + _DELTA + rb"([\x80-\xbf\xe0-\xef])[\x00-\x7f]{2}(?:" + _DELTA + rb"[\x00-\x7f]{2})*)"
_RUN1 = rb"(?:" + _DELTA + rb"([\xc0-\xdf])[\x00-\x7f](?:" + _DELTA + rb"[\x00-\x7f])*)"
# Any number of channel events, each run starting with an explicit status byte; running-status
# events belong to the run of their status, so the data-byte count is always right.
_CHANNEL = re.compile(rb"(?:" + _RUN2 + rb"|" + _RUN1 + rb")*")
# Running-status continuations (after a meta event, which does not cancel running status).
_CONT = {
    2: re.compile(rb"(?:" + _DELTA + rb"[\x00-\x7f]{2})*"),
    1: re.compile(rb"(?:" + _DELTA + rb"[\x00-\x7f])*"),
}


def skip_channel_events(data: bytes, pos: int, end: int, status: int) -> tuple[int, int]:
    """Skip well-formed channel events in ``data[pos:end]``; return (new pos, running status).

    ``status`` is the running status in effect at ``pos`` (0 for none).
    """
    if status:
        pos = _CONT[_DATA_LEN[status >> 4]].match(data, pos, end).end()
    m = _CHANNEL.match(data, pos, end)
    if m.end() > pos:
        s2, s1 = m.start(1), m.start(2)
        status = data[max(s2, s1)]
        pos = m.end()
    return pos, status


class _Bad(Exception):
    """Internal: the track does not parse; ``args[0]`` says why, ``args[1]`` where."""


def _varlen(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    for k in range(4):
        if pos >= end:
            raise _Bad("truncated variable-length number", pos)
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos
    raise _Bad("variable-length number longer than 4 bytes", pos)


def parse_track(data: bytes, pos: int, end: int) -> int:
    """Parse events from ``pos``; return the position just after end-of-track (FF 2F 00).

    Raises ``_Bad`` at the first malformed event or when ``end`` is reached without end-of-track.
    Meta events keep running status (as mido does); sysex cancels it (as the SMF spec says).
    """
    status = 0
    while True:
        pos, status = skip_channel_events(data, pos, end, status)
        if pos >= end:
            raise _Bad("no end-of-track event", pos)
        _, pos = _varlen(data, pos, end)  # delta time
        if pos >= end:
            raise _Bad("truncated event", pos)
        b = data[pos]
        if b == 0xFF:
            if pos + 1 >= end or data[pos + 1] >= 0x80:
                raise _Bad("bad meta event type", pos)
            mtype = data[pos + 1]
            n, pos = _varlen(data, pos + 2, end)
            if pos + n > end:
                raise _Bad("meta event runs past the track end", pos)
            pos += n
            if mtype == 0x2F:
                if n != 0:
                    raise _Bad("end-of-track event with data", pos)
                return pos
        elif b == 0xF0 or b == 0xF7:
            n, pos = _varlen(data, pos + 1, end)
            if pos + n > end:
                raise _Bad("sysex event runs past the track end", pos)
            pos += n
            status = 0
        elif b >= 0xF0:
            raise _Bad(f"invalid status byte 0x{b:02X}", pos)
        else:
            if b >= 0x80:
                status, pos = b, pos + 1
            elif not status:
                raise _Bad("running status without a preceding status byte", pos)
            n = _DATA_LEN[status >> 4]
            if pos + n > end:
                raise _Bad("truncated channel event", pos)
            for q in range(pos, pos + n):
                if data[q] >= 0x80:
                    raise _Bad(f"data byte 0x{data[q]:02X} >= 0x80", q)
            pos += n


def _header(data: bytes, name: str) -> tuple[int, int]:
    """Check the MThd chunk; return (ntracks, offset of the first chunk after it)."""
    if len(data) == 0:
        raise MidiError(f"{name}: empty file — not a MIDI file")
    if data[:4] != b"MThd" or len(data) < 14:
        raise MidiError(f"{name}: not a Standard MIDI File (no MThd header) — use a .mid/.midi file")
    hlen, fmt, ntracks, _division = struct.unpack(">IHHH", data[4:14])
    if hlen < 6 or fmt > 2 or 8 + hlen > len(data):
        raise MidiError(f"{name}: bad MIDI header (length {hlen}, format {fmt}) — the file is damaged")
    if ntracks == 0:
        raise MidiError(f"{name}: MIDI file has no tracks — nothing to read")
    return ntracks, 8 + hlen


def _chunk_at(data: bytes, pos: int, k: int, name: str) -> tuple[bytes, int, int]:
    """The chunk header at ``pos``: (id, data start, declared end); MidiError on garbage."""
    cid, clen = data[pos : pos + 4], struct.unpack(">I", data[pos + 4 : pos + 8])[0]
    if cid != b"MTrk" and not all(0x41 <= c <= 0x7A for c in cid):
        raise MidiError(f"{name}: garbage where track {k} should start (byte {pos}) — {REPAIR_HINT}")
    return cid, pos + 8, pos + 8 + clen


def _bytes(n: int) -> str:
    return f"{n} byte" if n == 1 else f"{n} bytes"


def check_chunks(data: bytes, name: str = "<bytes>") -> None:
    """Raise MidiError unless ``data`` is a well-formed Standard MIDI File, event by event.

    Every MTrk must parse (delta times, running status, channel data bytes < 0x80, meta and sysex
    lengths) and its end-of-track event must be its last byte. A track that ends early is the
    signature of line-ending damage, and the message says how to repair it. Chunks after the
    declared number of tracks are ignored (as every reader does).
    """
    ntracks, pos = _header(data, name)
    k = 0
    while k < ntracks and pos + 8 <= len(data):
        cid, start, end = _chunk_at(data, pos, k, name)
        pos = end
        if cid != b"MTrk":
            continue
        try:
            stop = parse_track(data, start, min(end, len(data)))
        except _Bad as e:
            why, where = e.args
            if end > len(data):
                raise MidiError(
                    f"{name}: track {k} is {_bytes(end - len(data))} shorter than its header says "
                    f"(line-ending damage or truncation) — {REPAIR_HINT}"
                ) from None
            raise MidiError(
                f"{name}: track {k} is malformed ({why} at byte {where}) — the file is damaged; "
                f"re-download it or {REPAIR_HINT}"
            ) from None
        if stop != end:
            raise MidiError(
                f"{name}: track {k} is {_bytes(end - stop)} shorter than its header says "
                f"(line-ending damage) — {REPAIR_HINT}"
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


_REPAIR_NAMES = {"repair_bytes", "repair_tree", "restorations", "insert_cr", "note_end_seconds"}


def __getattr__(name: str):
    """Re-export the repair API, e.g. ``from musicrnn.midifile import repair_tree``."""
    if name in _REPAIR_NAMES:
        from . import midirepair

        return getattr(midirepair, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
