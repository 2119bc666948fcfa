"""Real-time MIDI ports: pick a working backend, open output/input ports, record a phrase.

Playing a note stream on time (``Player``, ``PlaybackStats``, ``SentMessage``) lives in
``musicrnn.player``; those names are re-exported here (lazily, see ``__getattr__``), so
``from musicrnn.midiport import Player`` keeps working.

Backends are rtmidi's (ALSA, JACK, CoreMIDI, WinMM). A headless Linux box has no ALSA sequencer,
but a JACK server with the dummy driver works: ``jackd -r -d dummy`` (package
jackd2); ``dummy_jack_server`` starts one for tests and benchmarks.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from typing import Iterable, Iterator, Sequence

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


def choose_api(api: str | None = None) -> str:
    """``api`` lower-cased, or (None) the first backend that works now; MusicRNNError if none does."""
    if api is not None:
        return api.lower()
    usable = available_apis()
    if not usable:
        raise MusicRNNError(f"no usable MIDI backend (tried {', '.join(compiled_apis()) or 'none'}): "
                            f"{_how_to_get_backend()}")
    return usable[0]


def _get_ports(kind: str, api: str | None) -> list[str]:
    """Port names; the rtmidi object is deleted after (else its JACK client stays open and libjack
    prints "Cannot read socket" when the server stops)."""
    dev = _make(kind, choose_api(api), "musicrnn-list")
    try:
        return dev.get_ports()
    finally:
        dev.delete()


def list_ports(api: str | None = None) -> list[str]:
    """Output ports (destinations we can send to) on ``api`` or the first usable backend."""
    return _get_ports("out", api)


def list_input_ports(api: str | None = None) -> list[str]:
    """Input ports (sources we can listen to) on ``api`` or the first usable backend."""
    return _get_ports("in", api)


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
    api = choose_api(api)
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
        self._undrained = False  # sent since the last drain()

    def send(self, message: Sequence[int]) -> None:
        self._dev.send_message(message)
        self._undrained = True

    def drain(self) -> None:
        """Block until everything sent has left the port (issue 11: JACK delivers once per cycle, so
        a port closed right after a send could lose its last note-off): 3 JACK cycles, else 20 ms."""
        if self._dev is None or not self._undrained:
            return
        if self.api == "jack":
            from .jackdrain import drain_jack

            drain_jack()
        else:
            time.sleep(0.02)
        self._undrained = False

    def close(self) -> None:
        if self._dev is not None:
            self.drain()
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


_PLAYER_NAMES = ("Player", "PlaybackStats", "SentMessage")


def __getattr__(name: str):
    """Lazy re-export of ``musicrnn.player`` names (player imports this module's constants, so an
    eager import here would be circular)."""
    if name in _PLAYER_NAMES:
        from . import player

        return getattr(player, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
