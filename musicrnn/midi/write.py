"""The one MIDI writer: note arrays -> Standard MIDI File bytes, with numpy, streamed in blocks.

``Notes.to_midi`` / ``Notes.write_midi`` call it, and through them sampling, the gallery and
rendering; nothing else in the project writes MIDI bytes (reading them is ``events``).

Why numpy and blocks: pretty_midi builds a Python ``Note`` and two ``mido.Message`` objects per note
and, in ``time_to_tick``, an array with one float per *tick* of the piece (1920 per second): hundreds
of MB for a long sample. Here every event is one int64 sort key ``tick << 16 | pitch << 8 |
velocity`` (note-off = velocity 0), sorted in place, and encoded ``CHUNK`` events at a time (running
status, as mido writes), so writing costs ~16 bytes per note on top of the notes.

The bytes are pretty_midi's for the same notes (a test compares them): format 1, 960 ticks per beat,
a timing track (tempo 120 bpm, 4/4), then one track named "musicrnn" on channel 0 with a program
change. Times are snapped to ticks and every note keeps at least one tick: a note that rounds to zero
ticks would be written as note-on and note-off at the same tick, which MIDI readers pair with a
*later* note-off of that pitch (the note would hang for seconds, or vanish). At equal ticks events
are ordered by (pitch, velocity), so a note-off (velocity 0) precedes a re-strike of its pitch, as
pretty_midi's ``event_compare`` orders them. Equal keys are identical events, so no stable sort is
needed.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

MIDI_RESOLUTION, MIDI_TEMPO = 960, 120.0  # what is written: ticks per beat, bpm
TICKS_PER_SECOND = MIDI_RESOLUTION * MIDI_TEMPO / 60.0  # 1920: one tick ~0.52 ms
CHUNK = 1 << 16  # notes (or events) per vectorised block: bounds the temporaries
TRACK_NAME = b"musicrnn"
MAX_DELTA = (1 << 28) - 1  # the largest variable-length quantity a MIDI file can hold


def _event_keys(pitch: np.ndarray, start: np.ndarray, end: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """Sorted (2n,) int64 keys ``tick << 16 | pitch << 8 | velocity`` of every note-on and note-off."""
    n = len(pitch)
    keys = np.empty(2 * n, np.int64)
    for i in range(0, n, CHUNK):
        j = min(i + CHUNK, n)
        s = np.rint(start[i:j] * TICKS_PER_SECOND).astype(np.int64)  # (c,)
        e = np.maximum(np.rint(end[i:j] * TICKS_PER_SECOND).astype(np.int64), s + 1)  # (c,)
        if len(s) and s.min() < 0:
            raise ValueError("notes before time 0 cannot be written to a MIDI file")
        p = pitch[i:j].astype(np.int64) << 8
        keys[2 * i:2 * j:2] = (s << 16) | p | velocity[i:j].astype(np.int64)
        keys[2 * i + 1:2 * j:2] = (e << 16) | p
    keys.sort()
    return keys


def _vlq_sizes(delta: np.ndarray) -> np.ndarray:
    """Bytes of each delta time as a MIDI variable-length quantity (1..4)."""
    if len(delta) and delta.max() > MAX_DELTA:
        raise ValueError(f"a gap of more than {MAX_DELTA / TICKS_PER_SECOND:.0f} s cannot be written to MIDI")
    return 1 + (delta >= 1 << 7).astype(np.int64) + (delta >= 1 << 14) + (delta >= 1 << 21)


def _chunks(keys: np.ndarray):
    """Yield (delta (c,), sizes (c,), keys (c,)) per block of sorted keys."""
    prev = 0
    for i in range(0, len(keys), CHUNK):
        k = keys[i:i + CHUNK]
        ticks = k >> 16
        delta = np.diff(ticks, prepend=prev)
        prev = int(ticks[-1])
        yield delta, _vlq_sizes(delta), k


def _encode(delta: np.ndarray, nb: np.ndarray, k: np.ndarray, status: int | None) -> bytes:
    """Events as delta + pitch + velocity in running status; ``status`` is written before the first."""
    size = nb + 2
    offs = np.cumsum(size) - size  # (c,) first byte of each event
    buf = np.empty(int(size.sum()), np.uint8)
    for b in range(4):  # b-th byte of the delta: 7 bits, high bit set on all but the last
        m = nb > b
        rest = nb[m] - 1 - b
        buf[offs[m] + b] = ((delta[m] >> (7 * rest)) & 0x7F) | np.where(rest > 0, 0x80, 0)
    at = offs + nb
    buf[at] = (k >> 8) & 0xFF
    buf[at + 1] = k & 0xFF
    if status is None:
        return buf.tobytes()
    first = int(nb[0])  # the first event's delta, then its status byte
    return buf[:first].tobytes() + bytes([status]) + buf[first:].tobytes()


def write_midi(f: BinaryIO, pitch: np.ndarray, start: np.ndarray, end: np.ndarray, velocity: np.ndarray,
               program: int = 0, channel: int = 0) -> None:
    """Write notes (pitch 0..127, start/end in seconds >= 0, velocity 1..127; (n,) arrays each) as a
    MIDI file to the open binary file ``f``, block by block."""
    keys = _event_keys(pitch, start, end, velocity)
    tempo = round(60e6 / MIDI_TEMPO)  # microseconds per beat: 500000
    timing = (b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big") + b"\x00\xff\x58\x04\x04\x02\x18\x08"
              + b"\x01\xff\x2f\x00")
    head = (b"\x00\xff\x03" + bytes([len(TRACK_NAME)]) + TRACK_NAME
            + bytes([0x00, 0xC0 | channel, program & 0x7F]))
    tail = b"\x01\xff\x2f\x00"  # end of track one tick after the last event
    length = (len(head) + len(tail) + (len(keys) > 0)  # + the one status byte (running status after it)
              + sum(int(nb.sum()) + 2 * len(nb) for _, nb, _ in _chunks(keys)))
    f.write(b"MThd" + struct.pack(">IHHH", 6, 1, 2, MIDI_RESOLUTION))
    f.write(b"MTrk" + struct.pack(">I", len(timing)) + timing)
    f.write(b"MTrk" + struct.pack(">I", length) + head)
    f.writelines(_encode(delta, nb, k, 0x90 | channel if i == 0 else None)
                 for i, (delta, nb, k) in enumerate(_chunks(keys)))
    f.write(tail)

