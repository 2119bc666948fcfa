"""Listening: collect a phrase played on a MIDI input into ``Notes`` (call and response)."""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np

from musicrnn.notes import Notes
from musicrnn.realtime.ports import NOTE_OFF, NOTE_ON, MidiInput


def notes_from_events(events: Iterable[tuple[float, Sequence[int]]], end_time: float | None = None) -> Notes:
    """Pair note-on/note-off messages ``(time_s, message)`` into ``Notes`` starting at 0.

    A note-on with velocity 0 is a note-off. A re-strike of a held pitch closes the held note at
    the new onset (a keyboard cannot do this, but software can). Notes still held at the end are
    closed at ``end_time`` (default: the last event's time).
    """
    held: dict[tuple[int, int], tuple[float, int]] = {}
    rows: list[tuple[int, float, float, int]] = []
    last = None
    for t, msg in events:
        if len(msg) < 3:
            continue
        kind, ch, pitch, vel = msg[0] & 0xF0, msg[0] & 0x0F, msg[1], msg[2]
        if kind not in (NOTE_ON, NOTE_OFF):
            continue
        last = t
        key = (ch, pitch)
        if key in held:  # an off, or a re-strike, ends the held note
            t0, v0 = held.pop(key)
            rows.append((pitch, t0, t, v0))
        if kind == NOTE_ON and vel > 0:
            held[key] = (t, vel)
    close = end_time if end_time is not None else last
    for (_, pitch), (t0, v0) in held.items():
        rows.append((pitch, t0, max(close, t0 + 1e-3), v0))
    if not rows:
        return Notes.empty()
    p, s, e, v = (np.array(c) for c in zip(*rows))
    origin = s.min()
    return Notes.from_arrays(p, s - origin, e - origin, v)


def record_phrase(inp: MidiInput, pause_s: float = 1.5, max_s: float = 60.0,
                  wait_s: float | None = None) -> Notes:
    """Collect notes played on ``inp`` from the first note-on until ``pause_s`` without any note event.

    Waits up to ``wait_s`` (None: forever) for the first note; returns ``Notes.empty()`` if none
    comes. ``max_s`` caps a phrase that never pauses. Notes start at 0. Messages that arrived before
    the call are discarded (they belong to the previous turn).
    """
    inp.clear()
    begin = time.perf_counter()
    events: list[tuple[float, list[int]]] = []
    while True:  # wait for the first note-on; poll so Ctrl-C is honoured
        if wait_s is not None and time.perf_counter() - begin > wait_s:
            return Notes.empty()
        ev = inp.get(timeout=0.1)
        if ev and len(ev[1]) >= 3 and ev[1][0] & 0xF0 == NOTE_ON and ev[1][2] > 0:
            events.append(ev)
            break
    first = last = events[0][0]
    while True:
        now = time.perf_counter()
        if now - last >= pause_s or now - first >= max_s:
            break
        ev = inp.get(timeout=min(0.1, max(0.0, pause_s - (now - last))))
        if ev and len(ev[1]) >= 3 and ev[1][0] & 0xF0 in (NOTE_ON, NOTE_OFF):
            events.append(ev)
            last = ev[0]
    return notes_from_events(events, end_time=min(time.perf_counter(), last + 1e-3 + pause_s))


