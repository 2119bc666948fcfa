"""Note-end timing of a well-formed MIDI file (what MAESTRO's ``duration`` column measures)."""
from __future__ import annotations

from .events import chunks, division, header, walk


def note_end_seconds(data: bytes) -> float:
    """Time in seconds of the last note-on/off event, with the file's tempo map (well-formed data).

    This is what MAESTRO's ``duration`` column tracks (within about 0.1 s), unlike the file
    length, which also counts pedal events after the last note.
    """
    _, pos = header(data, "<bytes>")
    div = division(data)
    tempos: list[tuple[int, int]] = []
    last_note = 0
    for cid, start, end in chunks(data, pos):
        if cid != b"MTrk":
            continue
        tick = 0
        for delta, kind, mtype, i, n in walk(data, start, end):
            tick += delta
            if kind == 0xFF and mtype == 0x51 and n == 3:
                tempos.append((tick, int.from_bytes(data[i : i + 3], "big")))
            elif 0x80 <= kind < 0xA0:
                last_note = max(last_note, tick)
    if div & 0x8000:  # SMPTE time: ticks are fixed fractions of a second
        return last_note / ((256 - (div >> 8)) * (div & 0xFF))
    seconds, at, tempo = 0.0, 0, 500000
    for t, new in sorted(tempos):
        if t >= last_note:
            break
        seconds += (t - at) * tempo / 1e6 / div
        at, tempo = t, new
    return seconds + (last_note - at) * tempo / 1e6 / div
