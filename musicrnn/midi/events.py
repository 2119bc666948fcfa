"""Standard MIDI File bytes, read: the header, the chunks, variable-length numbers, the data-byte count
of each channel status and the event walkers. Every reader of MIDI bytes in the project builds on this
module: ``check`` (the strict parse, ``parse_track``), ``repair`` / ``search`` and ``timing`` (event
by event, ``walk``), and ``fast``, whose vectorised search for event starts uses the same table,
header, chunk and variable-length readers. The one writer of MIDI bytes is ``write``.
"""
from __future__ import annotations

import re
import struct
from collections.abc import Iterator

from ..errors import MidiError

# Data bytes that follow a channel status byte 0x80..0xEF (index: status >> 4).
DATA_LEN = {8: 2, 9: 2, 10: 2, 11: 2, 12: 1, 13: 1, 14: 2}

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
        pos = _CONT[DATA_LEN[status >> 4]].match(data, pos, end).end()
    m = _CHANNEL.match(data, pos, end)
    if m.end() > pos:
        s2, s1 = m.start(1), m.start(2)
        status = data[max(s2, s1)]
        pos = m.end()
    return pos, status


class BadEvent(Exception):
    """The track does not parse; ``args[0]`` says why, ``args[1]`` where."""


class BadValue(BadEvent):
    """The track parses but an event holds a value no reader can use (a tempo of 0)."""


def varlen(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        if pos >= end:
            raise BadEvent("truncated variable-length number", pos)
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos
    raise BadEvent("variable-length number longer than 4 bytes", pos)


def parse_track(data: bytes, pos: int, end: int) -> int:
    """Parse events from ``pos``; return the position just after end-of-track (FF 2F 00).

    Raises ``BadEvent`` at the first malformed event or when ``end`` is reached without end-of-track.
    Meta events keep running status (as mido does); sysex cancels it (as the SMF spec says).
    """
    status = 0
    while True:
        pos, status = skip_channel_events(data, pos, end, status)
        if pos >= end:
            raise BadEvent("no end-of-track event", pos)
        _, pos = varlen(data, pos, end)  # delta time
        if pos >= end:
            raise BadEvent("truncated event", pos)
        b = data[pos]
        if b == 0xFF:
            if pos + 1 >= end or data[pos + 1] >= 0x80:
                raise BadEvent("bad meta event type", pos)
            mtype = data[pos + 1]
            n, pos = varlen(data, pos + 2, end)
            if pos + n > end:
                raise BadEvent("meta event runs past the track end", pos)
            if mtype == 0x51 and n == 3 and data[pos : pos + 3] == b"\0\0\0":
                raise BadValue("a tempo of 0 microseconds per beat", pos - 3)
            pos += n
            if mtype == 0x2F:
                if n != 0:
                    raise BadEvent("end-of-track event with data", pos)
                return pos
        elif b == 0xF0 or b == 0xF7:
            n, pos = varlen(data, pos + 1, end)
            if pos + n > end:
                raise BadEvent("sysex event runs past the track end", pos)
            pos += n
            status = 0
        elif b >= 0xF0:
            raise BadEvent(f"invalid status byte 0x{b:02X}", pos)
        else:
            if b >= 0x80:
                status, pos = b, pos + 1
            elif not status:
                raise BadEvent("running status without a preceding status byte", pos)
            n = DATA_LEN[status >> 4]
            if pos + n > end:
                raise BadEvent("truncated channel event", pos)
            for q in range(pos, pos + n):
                if data[q] >= 0x80:
                    raise BadEvent(f"data byte 0x{data[q]:02X} >= 0x80", q)
            pos += n


def header(data: bytes, name: str) -> tuple[int, int]:
    """Check the MThd chunk; return (ntracks, offset of the first chunk after it)."""
    if len(data) == 0:
        raise MidiError(f"{name}: empty file — not a MIDI file")
    if data[:4] != b"MThd" or len(data) < 14:
        raise MidiError(f"{name}: not a Standard MIDI File (no MThd header) — use a .mid/.midi file")
    hlen, fmt, ntracks, ticks = struct.unpack(">IHHH", data[4:14])
    if hlen < 6 or fmt > 2 or 8 + hlen > len(data):
        raise MidiError(f"{name}: bad MIDI header (length {hlen}, format {fmt}) — the file is damaged")
    if ntracks == 0:
        raise MidiError(f"{name}: MIDI file has no tracks — nothing to read")
    if ticks == 0:
        raise MidiError(f"{name}: the header's time division is 0 ticks per beat, so no event has a time "
                        f"— the file is damaged; re-download it or re-export it from its editor")
    return ntracks, 8 + hlen


def walk(data: bytes, pos: int, end: int, status: int = 0) -> Iterator[tuple[int, int, int, int, int]]:
    """Events of well-formed track bytes ``data[pos:end]``, for readers that need them one by one.

    Yields ``(delta, kind, meta_type, data_pos, data_len)``: ``kind`` is 0xFF (meta, ``meta_type`` its
    type), 0xF0 (sysex) or the channel status byte (running status resolved; ``meta_type`` -1);
    the event's data is ``data[data_pos:data_pos + data_len]``. Meta events keep running status,
    sysex cancels it (as ``parse_track``). The last running status is the generator's return value.
    """
    while pos < end:
        delta, pos = varlen(data, pos, end)
        b = data[pos]
        if b == 0xFF:
            mtype = data[pos + 1]
            n, pos = varlen(data, pos + 2, end)
            yield delta, 0xFF, mtype, pos, n
            pos += n
        elif b == 0xF0 or b == 0xF7:
            n, pos = varlen(data, pos + 1, end)
            yield delta, 0xF0, -1, pos, n
            pos += n
            status = 0
        else:
            if b >= 0x80:
                status, pos = b, pos + 1
            n = DATA_LEN[status >> 4]
            yield delta, status, -1, pos, n
            pos += n
    return status


def division(data: bytes) -> int:
    """The header's time division (ticks per quarter note, or SMPTE when bit 15 is set)."""
    return struct.unpack(">H", data[12:14])[0]


def chunks(data: bytes, pos: int) -> Iterator[tuple[bytes, int, int]]:
    """(chunk id, data start, declared end) of each chunk from ``pos`` (well-formed data)."""
    while pos + 8 <= len(data):
        end = pos + 8 + struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        yield data[pos : pos + 4], pos + 8, end
        pos = end
