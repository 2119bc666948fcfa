"""Real-time MIDI: pick a working backend, open ports, play a note stream on time, record a phrase.

Why this module exists: ``python -m musicrnn.live`` generates notes while they play. Generation
time per step varies (and can exceed a note's gap), so playback must never wait for it:

- a *producer* thread pulls notes from the caller's iterator into a bounded buffer;
- the *playback* thread (the caller's, so Ctrl-C lands in it) moves notes within ``lookahead_s``
  into a heap of timed note-on/note-off events and sends each at its due ``time.perf_counter``;
- if a note arrives after its onset (underrun) the stream clock is shifted by the delay and the
  underrun counted: the music pauses instead of bunching late notes together;
- on stop, exception or KeyboardInterrupt every sounding note gets its note-off and every used
  channel gets CC 123 (all notes off): a hanging note is the one failure a listener always hears.

Backends are rtmidi's (ALSA, JACK, CoreMIDI, WinMM). A headless Linux box has no ALSA sequencer,
but a JACK server with the dummy driver works: ``jackd -r -S -d dummy -r 48000 -p 256`` (package
jackd2); ``dummy_jack_server`` starts one for tests and benchmarks.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from .errors import ConfigError, MusicRNNError
from .notes import Notes

# name -> rtmidi API constant, in rtmidi's own preference order; resolved lazily (import is slow-ish)
_API_NAMES = ("alsa", "jack", "coremidi", "winmm")
NOTE_ON, NOTE_OFF, CONTROL = 0x90, 0x80, 0xB0
ALL_NOTES_OFF = 123


def _rtmidi():
    import rtmidi  # local: importing musicrnn must not need a working MIDI library

    return rtmidi


def _api_const(name: str) -> int:
    rt = _rtmidi()
    return {"alsa": rt.API_LINUX_ALSA, "jack": rt.API_UNIX_JACK,
            "coremidi": rt.API_MACOSX_CORE, "winmm": rt.API_WINDOWS_MM}[name]


@contextlib.contextmanager
def _quiet_stderr():
    """Silence fd 2 while probing: libjack/alsa-lib print several lines per failed connect."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def compiled_apis() -> list[str]:
    """Backends this python-rtmidi build supports, whether or not a server is running."""
    rt = _rtmidi()
    have = set(rt.get_compiled_api())
    return [n for n in _API_NAMES if _api_const(n) in have]


def _make(kind: str, api: str, client: str):
    """Construct an rtmidi MidiOut/MidiIn on ``api``; MusicRNNError (with the fix) if unusable."""
    rt = _rtmidi()
    if api not in compiled_apis():
        raise ConfigError(f"MIDI backend {api!r} is not available in this python-rtmidi build; "
                          f"choose one of: {', '.join(compiled_apis()) or 'none'}")
    if api == "alsa" and not os.path.exists("/dev/snd/seq"):
        raise MusicRNNError(f"MIDI backend 'alsa' is not usable: /dev/snd/seq is missing — "
                            f"{_how_to_get_backend()}")
    cls = rt.MidiOut if kind == "out" else rt.MidiIn
    try:
        with _quiet_stderr():
            return cls(_api_const(api), name=client)
    except rt.RtMidiError as e:
        raise MusicRNNError(f"MIDI backend {api!r} is not usable ({e}) — {_how_to_get_backend()}") from e


def _how_to_get_backend() -> str:
    if sys.platform.startswith("linux"):
        return ("start a JACK server (`apt-get install jackd2`, then `jackd -r -d dummy &`) "
                "or load the ALSA sequencer (`modprobe snd-seq`)")
    if sys.platform == "darwin":
        return "enable the IAC Driver in Audio MIDI Setup, or connect a MIDI device"
    return "install a MIDI device or loopMIDI, or pass --virtual where the backend supports it"


def available_apis() -> list[str]:
    """Compiled backends that work right now (ALSA seq present / JACK server running), preferred first."""
    ok = []
    for api in compiled_apis():
        try:
            _make("out", api, "musicrnn-probe").delete()
            ok.append(api)
        except MusicRNNError:
            pass
    return ok


def _choose_api(api: str | None) -> str:
    if api is not None:
        return api.lower()
    usable = available_apis()
    if not usable:
        raise MusicRNNError(f"no usable MIDI backend (tried {', '.join(compiled_apis()) or 'none'}): "
                            f"{_how_to_get_backend()}")
    return usable[0]


def list_ports(api: str | None = None) -> list[str]:
    """Output ports (destinations we can send to) on ``api`` or the first usable backend."""
    return _make("out", _choose_api(api), "musicrnn-list").get_ports()


def list_input_ports(api: str | None = None) -> list[str]:
    """Input ports (sources we can listen to) on ``api`` or the first usable backend."""
    return _make("in", _choose_api(api), "musicrnn-list").get_ports()


def _find_port(ports: list[str], name: str, api: str, direction: str) -> int:
    """Exact name first, then case-insensitive substring; missing/ambiguous -> one-line error."""
    if name in ports:
        return ports.index(name)
    hits = [i for i, p in enumerate(ports) if name.lower() in p.lower()]
    if len(hits) == 1:
        return hits[0]
    avail = ", ".join(repr(p) for p in ports) or "none"
    if hits:
        raise MusicRNNError(f"MIDI {direction} port {name!r} is ambiguous on {api}: matches "
                            f"{', '.join(repr(ports[i]) for i in hits)} — give more of the name")
    raise MusicRNNError(f"MIDI {direction} port {name!r} not found on {api}; available: {avail} "
                        f"— pass one of these, or open a virtual port instead")


def _open(kind: str, name: str | None, virtual: str | None, api: str | None, client: str):
    if name is not None and virtual is not None:
        raise ConfigError("give either a MIDI port name or a virtual port name, not both")
    api = _choose_api(api)
    dev = _make(kind, api, client)
    direction = "output" if kind == "out" else "input"
    try:
        if virtual is not None:
            try:
                dev.open_virtual_port(virtual)
            except (NotImplementedError, _rtmidi().RtMidiError) as e:
                raise MusicRNNError(f"cannot create virtual MIDI {direction} port {virtual!r} on {api} "
                                    f"({e}) — open an existing port by name instead") from e
            return dev, api, f"{client}:{virtual}"
        ports = dev.get_ports()
        if name is None:
            if not ports:
                raise MusicRNNError(f"no MIDI {direction} ports on {api} — start a synth/device or "
                                    f"open a virtual port and connect it yourself")
            idx = 0
        else:
            idx = _find_port(ports, name, api, direction)
        dev.open_port(idx, name=f"{client} {'out' if kind == 'out' else 'in'}")
        return dev, api, ports[idx]
    except BaseException:
        dev.delete()
        raise


class MidiOutput:
    """An open output port. ``send`` takes a raw MIDI message (e.g. ``[0x90, 60, 100]``)."""

    def __init__(self, name: str | None = None, virtual: str | None = None, api: str | None = None,
                 client: str = "musicrnn"):
        self._dev, self.api, self.name = _open("out", name, virtual, api, client)

    def send(self, message: Sequence[int]) -> None:
        self._dev.send_message(message)

    def close(self) -> None:
        if self._dev is not None:
            self._dev.close_port()
            self._dev.delete()
            self._dev = None

    def __enter__(self) -> "MidiOutput":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MidiInput:
    """An open input port; incoming messages are queued with their ``perf_counter`` arrival time.

    A thread polls the port every ``poll_s`` instead of using rtmidi's callback: with python-rtmidi
    1.5.8 on JACK, callbacks deliver wrong bytes (lost and duplicated messages) when several
    messages arrive in one JACK cycle, while polling ``get_message`` is exact.
    """

    def __init__(self, name: str | None = None, virtual: str | None = None, api: str | None = None,
                 client: str = "musicrnn", poll_s: float = 0.001):
        self._dev, self.api, self.name = _open("in", name, virtual, api, client)
        self._events: deque[tuple[float, list[int]]] = deque()
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._poll_s = poll_s
        self._poller = threading.Thread(target=self._poll, name="musicrnn-midi-in", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        dev = self._dev
        while not self._closing.is_set():
            got = dev.get_message()
            if got is None:
                time.sleep(self._poll_s)
                continue
            with self._cond:
                self._events.append((time.perf_counter(), list(got[0])))
                self._cond.notify_all()

    def get(self, timeout: float | None = None) -> tuple[float, list[int]] | None:
        """Next ``(perf_counter_time, message)``, or None after ``timeout`` seconds."""
        with self._cond:
            if not self._events:
                self._cond.wait(timeout)
            return self._events.popleft() if self._events else None

    def clear(self) -> None:
        with self._cond:
            self._events.clear()

    def close(self) -> None:
        if self._dev is not None:
            self._closing.set()
            self._poller.join()
            self._dev.close_port()
            self._dev.delete()
            self._dev = None

    def __enter__(self) -> "MidiInput":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_output(name: str | None = None, virtual: str | None = None, api: str | None = None,
                client: str = "musicrnn") -> MidiOutput:
    """Open output port ``name`` (exact or unique substring), or create ``virtual``, or the first port.

    ``api`` is one of ``compiled_apis()``; None picks the first backend that works now.
    """
    return MidiOutput(name, virtual, api, client)


def open_input(name: str | None = None, virtual: str | None = None, api: str | None = None,
               client: str = "musicrnn", poll_s: float = 0.001) -> MidiInput:
    """Like ``open_output`` for listening (call-and-response); arrival times have ``poll_s`` resolution."""
    return MidiInput(name, virtual, api, client, poll_s)



# ---- listening: collect a played phrase --------------------------------------------------------
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
    for (ch, pitch), (t0, v0) in held.items():
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


# ---- playback ----------------------------------------------------------------------------------
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


_DONE = object()
_MAX_WAIT_S = 0.25


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
                if is_on:
                    self._note_on(ch, pitch, vel, self.t0 + t)
                else:
                    self._note_off(ch, pitch, self.t0 + t)
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


# ---- a headless JACK server for tests, benchmarks and CI ---------------------------------------
def _jack_server_answers(name: str) -> bool:
    saved = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        _make("out", "jack", "musicrnn-wait").delete()
        return True
    except MusicRNNError:
        return False
    finally:
        if saved is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = saved


@contextlib.contextmanager
def dummy_jack_server(name: str = "musicrnn-dummy", rate: int = 48000, period: int = 256,
                      timeout_s: float = 10.0) -> Iterator[str]:
    """Run ``jackd -n NAME -r -S -d dummy -r RATE -p PERIOD -w USEC`` for the ``with`` block; yield NAME.

    NAME is ``name``, or ``name-1``..``name-3`` if a server of that name is already running (another
    test run on the same machine). Names are reused on purpose: libjack keeps a registry of at most
    8 servers in /dev/shm and reclaims a dead server's slot only when its *name* is started again.
    Sets ``JACK_DEFAULT_SERVER=NAME`` (rtmidi clients of this process connect to it, not to someone
    else's server) and ``JACK_NO_START_SERVER=1``; both are restored after. The first ``-r`` means
    "no realtime scheduling", the second is the sample rate. ``-S`` (synchronous mode) makes the
    server wait for every client each cycle: on a loaded machine without realtime scheduling a late
    client otherwise loses that cycle's MIDI (seen ~1 in 12 runs at load 7 on 2 cores). ``-w`` makes the dummy driver's cycle
    one period (its default is 21333 us, the cycle of 1024 frames at 48 kHz).
    """
    jackd = shutil.which("jackd")
    if jackd is None:
        raise MusicRNNError("jackd not found — install it (Debian/Ubuntu: apt-get install jackd2)")
    names = [name] + [f"{name}-{i}" for i in range(1, 4)]
    free = [n for n in names if not _jack_server_answers(n)]
    if not free:
        raise MusicRNNError(f"JACK servers {', '.join(names)} are all running — stop one (or wait)")
    name = free[0]
    wait_us = int(round(period * 1e6 / rate))
    cmd = [jackd, "-n", name, "-r", "-S", "-d", "dummy", "-r", str(rate), "-p", str(period), "-w", str(wait_us)]
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        os.environ["JACK_DEFAULT_SERVER"] = name
        os.environ["JACK_NO_START_SERVER"] = "1"
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-2:]
                raise MusicRNNError(f"jackd did not start ({' '.join(cmd)}): {' | '.join(tail)}")
            if _jack_server_answers(name):
                break
            time.sleep(0.05)
        yield name
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()  # jackd exits cleanly on SIGTERM and frees its /dev/shm entries
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
