"""Real-time playback: play a note stream on a MIDI port on time, and stop cleanly.

Why this module exists: ``python -m musicrnn.live`` generates notes while they play. Generation
time per step varies (and can exceed a note's gap), so playback must never wait for it:

- a *producer* thread pulls notes from the caller's iterator into a bounded buffer;
- the *playback* thread (the caller's, so Ctrl-C lands in it) moves notes within ``lookahead_s``
  into a heap of timed note-on/note-off events and sends each at its due ``time.perf_counter``;
- if a note arrives after its onset (underrun) the stream clock is shifted by the delay and the
  underrun counted: the music pauses instead of bunching late notes together;
- on stop, exception or KeyboardInterrupt every sounding note gets its note-off and every used
  channel gets CC 123 (all notes off): a hanging note is the one failure a listener always hears.

Ports are opened by ``musicrnn.realtime.ports``; ``Player`` only needs an object with ``send(message)``.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from musicrnn.errors import ConfigError
from musicrnn.notes import Notes
from musicrnn.realtime.ports import ALL_NOTES_OFF, CONTROL, NOTE_OFF, NOTE_ON


class SentMessage(NamedTuple):
    """One message the Player sent; times are ``time.perf_counter`` seconds."""

    message: tuple[int, ...]
    scheduled: float  # when it was due (after any underrun shift); == sent for panic messages
    sent: float  # just before ``port.send``


@dataclass
class PlaybackStats:
    notes: int = 0
    messages: int = 0
    underruns: int = 0
    shifted_s: float = 0.0  # total clock shift caused by underruns
    onset_error_median_ms: float = float("nan")  # sent - scheduled, note-ons only
    onset_error_max_ms: float = float("nan")
    stopped: bool = False  # True if stop()/interrupt ended playback before the stream did


_DONE, _MAX_WAIT_S = object(), 0.25


class _NoteBuffer:
    """Bounded FIFO between producer and player; a Condition so the player can sleep until
    *either* its next event is due *or* a note arrives, and ``close`` wakes everyone."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self.items: deque = deque()
        self.cond = threading.Condition()
        self.closed = False
        self.version = 0  # bumped on every put: lets the player tell "new note" from "same head"

    def put(self, item) -> bool:
        with self.cond:
            while len(self.items) >= self.maxsize and not self.closed:
                self.cond.wait()
            if self.closed:
                return False
            self.items.append(item)
            self.version += 1
            self.cond.notify_all()
            return True

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


def _expand(source: Iterable) -> Iterator[tuple]:
    """Accept a Notes, or an iterable of note tuples and/or Notes chunks (what a generator yields)."""
    if isinstance(source, Notes):
        source = [source]
    for item in source:
        if isinstance(item, Notes):
            yield from zip(item.pitch.tolist(), item.start.tolist(), item.end.tolist(), item.velocity.tolist())
        else:
            yield tuple(item)


class Player:
    """Plays a note stream on a port with a producer thread, a timed event heap and a clean stop.

    ``source``: ``Notes``, or an iterable (typically a generator running the model) of
    ``(pitch, start_s, end_s, velocity[, channel])`` tuples and/or ``Notes`` chunks, ``start``
    non-decreasing, in seconds from the stream start. Stream time 0 is ``lead_s`` after the first
    note arrives (so model warm-up is not an underrun).
    ``port``: anything with ``send(message)`` (a ``MidiOutput``).

    Use ``play()`` (blocking, in the main thread so Ctrl-C reaches it) or ``start()``/``stop()``.
    """

    def __init__(self, port, source: Iterable, *, channel: int = 0, lookahead_s: float = 0.5,
                 buffer_notes: int = 256, lead_s: float = 0.1, late_tolerance_s: float = 0.005,
                 min_duration_s: float = 0.005, spin_s: float = 0.001,
                 clock: Callable[[], float] = time.perf_counter):
        if not 0 <= channel <= 15:
            raise ConfigError(f"MIDI channel must be 0..15, got {channel}")
        self.port, self.source, self.channel = port, source, channel
        self.lookahead_s, self.lead_s = lookahead_s, lead_s
        self.late_tolerance_s, self.min_duration_s, self.spin_s = late_tolerance_s, min_duration_s, spin_s
        self.clock = clock
        self.sent: list[SentMessage] = []
        self.underruns, self.shifted_s, self.notes_played = 0, 0.0, 0
        self.t0: float | None = None  # perf_counter time of stream time 0 (moves on underrun)
        self._buf = _NoteBuffer(buffer_notes)
        self._stop = threading.Event()
        self._stopped_early = False
        self._producer_error: BaseException | None = None
        # (channel, pitch) -> number of notes currently sounding on it; see _note_on
        self._sounding: dict[tuple[int, int], int] = {}
        self._channels: set[int] = set()
        self._thread: threading.Thread | None = None
        self._result: PlaybackStats | None = None
        self._error: BaseException | None = None

    # ---- producer thread ----
    def _produce(self) -> None:
        try:
            for note in _expand(self.source):
                if self._stop.is_set() or not self._buf.put(note):
                    return
        except BaseException as e:  # re-raised by play() after all notes are off
            self._producer_error = e
        finally:
            self._buf.put(_DONE)  # returns at once if the player already closed the buffer

    # ---- sending ----
    def _send(self, msg: tuple[int, ...], scheduled: float | None) -> None:
        now = self.clock()
        self.sent.append(SentMessage(msg, now if scheduled is None else scheduled, now))
        self.port.send(list(msg))

    def _note_on(self, ch: int, pitch: int, vel: int, due: float) -> None:
        # Re-strike policy: if this pitch is already sounding, send its note-off first, then the
        # note-on, and *count* it. A piano must release a key to strike it again, and many synths
        # ignore or mishandle a second note-on of a held pitch; the counter then suppresses the
        # older note's off (it would cut the new one short) so the pitch stops only when the last
        # overlapping note ends. The port therefore always sees strictly alternating on/off per
        # (channel, pitch), and exactly one off per note.
        key = (ch, pitch)
        n = self._sounding.get(key, 0)
        if n:
            self._send((NOTE_OFF | ch, pitch, 0), due)
        self._sounding[key] = n + 1
        self._channels.add(ch)
        self._send((NOTE_ON | ch, pitch, vel), due)
        self.notes_played += 1

    def _note_off(self, ch: int, pitch: int, due: float) -> None:
        key = (ch, pitch)
        n = self._sounding.get(key, 0)
        if n <= 1:
            self._sounding.pop(key, None)
            if n == 1:
                self._send((NOTE_OFF | ch, pitch, 0), due)
        else:
            self._sounding[key] = n - 1

    def all_notes_off(self) -> None:
        """Note-off for every sounding note, then CC 123 on every used channel. Idempotent."""
        for ch, pitch in list(self._sounding):
            self._send((NOTE_OFF | ch, pitch, 0), None)
        self._sounding.clear()
        for ch in sorted(self._channels | {self.channel}):
            self._send((CONTROL | ch, ALL_NOTES_OFF, 0), None)

    # ---- playback loop ----
    def _wait_until(self, deadline: float | None, seen_version: int) -> None:
        """Sleep until ``deadline`` (perf_counter), a new note or stop; spin the last ``spin_s``."""
        with self._buf.cond:
            if self._buf.version != seen_version or self._buf.closed or self._stop.is_set():
                return
            left = _MAX_WAIT_S if deadline is None else deadline - self.clock() - self.spin_s
            if left > 0:  # capped: some platforms only notice Ctrl-C when a wait returns
                self._buf.cond.wait(min(left, _MAX_WAIT_S))
                return
        while self.clock() < deadline:  # type: ignore[operator]  (< spin_s of busy wait)
            pass

    def _loop(self) -> None:
        heap: list[tuple[float, int, int, int, int, int]] = []  # (t_stream, off=0/on=1, seq, ch, pitch, vel)
        seq = itertools.count()
        done = False
        while not self._stop.is_set():
            # 1. move arrived notes that start within the lookahead into the heap
            with self._buf.cond:
                while self._buf.items:
                    item = self._buf.items[0]
                    if item is _DONE:
                        self._buf.items.popleft()
                        if self._producer_error is not None:
                            return  # the generator failed: silence now, play() re-raises
                        done = True
                        continue
                    if self.t0 is None:
                        self.t0 = self.clock() + self.lead_s
                    now_s = self.clock() - self.t0
                    start = float(item[1])
                    if start > now_s + self.lookahead_s:
                        break
                    self._buf.items.popleft()
                    self._buf.cond.notify_all()  # room for the producer
                    if start < now_s - self.late_tolerance_s:  # underrun: pause, don't bunch
                        self.underruns += 1
                        self.shifted_s += now_s - start
                        self.t0 += now_s - start
                    pitch, vel = int(item[0]), int(min(max(int(item[3]), 1), 127))
                    ch = int(item[4]) if len(item) > 4 else self.channel
                    end = max(float(item[2]), start + self.min_duration_s)
                    heapq.heappush(heap, (start, 1, next(seq), ch, pitch, vel))
                    heapq.heappush(heap, (end, 0, next(seq), ch, pitch, 0))
                head = self._buf.items[0] if self._buf.items else None
                version = self._buf.version
            # 2. send everything due (offs before ons at the same instant: clean re-strike)
            while heap and self.t0 + heap[0][0] <= self.clock():
                t, is_on, _, ch, pitch, vel = heapq.heappop(heap)
                self._note_on(ch, pitch, vel, self.t0 + t) if is_on else self._note_off(ch, pitch, self.t0 + t)
            if done and not heap:
                return
            # 3. sleep until the next event, or until the buffer head enters the lookahead
            deadline = self.t0 + heap[0][0] if heap else None
            if head is not None and head is not _DONE:
                enter = self.t0 + float(head[1]) - self.lookahead_s
                deadline = enter if deadline is None else min(deadline, enter)
            self._wait_until(deadline, version)
        self._stopped_early = True

    def play(self) -> PlaybackStats:
        """Play the whole stream (blocking). Always ends with every note off, even on Ctrl-C."""
        producer = threading.Thread(target=self._produce, name="musicrnn-producer", daemon=True)
        producer.start()
        try:
            self._loop()
        finally:
            self._stop.set()
            self._buf.close()  # unblocks a producer waiting for room
            try:  # deliver the last notes first, then All Notes Off (the port drains again on close),
                if hasattr(self.port, "drain"):  # which runs even if a second Ctrl-C lands in drain()
                    self.port.drain()
            finally:
                self.all_notes_off()
        producer.join(timeout=0.5)  # a generator mid-step is left to finish on its own (daemon)
        if self._producer_error is not None:
            raise self._producer_error
        return self.stats()

    def start(self) -> None:
        """Play in a background thread; ``stop()``/``join()`` end it."""
        def run():
            try:
                self._result = self.play()
            except BaseException as e:
                self._error = e

        self._thread = threading.Thread(target=run, name="musicrnn-player", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask playback to end now (from any thread); notes are turned off by the playing thread."""
        self._stop.set()
        with self._buf.cond:
            self._buf.cond.notify_all()

    def join(self, timeout: float | None = None) -> PlaybackStats:
        """Wait for a ``start()``ed playback; re-raises its error."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self._error is not None:
            raise self._error
        return self.stats()

    def onset_errors(self) -> np.ndarray:
        """Seconds between due and actual send time for every note-on (float64 (n,))."""
        return np.array([m.sent - m.scheduled for m in self.sent if m.message[0] & 0xF0 == NOTE_ON])

    def stats(self) -> PlaybackStats:
        err = self.onset_errors() * 1e3
        return PlaybackStats(
            notes=self.notes_played, messages=len(self.sent), underruns=self.underruns,
            shifted_s=self.shifted_s,
            onset_error_median_ms=float(np.median(err)) if len(err) else float("nan"),
            onset_error_max_ms=float(err.max()) if len(err) else float("nan"),
            stopped=self._stopped_early)
