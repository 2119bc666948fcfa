"""Real-time MIDI ports: pick a working backend, open output and input ports.

Playing a note stream on time is ``player``; recording a played phrase is ``recording``; waiting
for JACK to deliver what was sent is ``jackdrain``; a live session (stream or call and response)
is ``session``.

Backends are rtmidi's (ALSA, JACK, CoreMIDI, WinMM). A headless Linux box has no ALSA sequencer,
but a JACK server with the dummy driver works: ``jackd -r -d dummy`` (package
jackd2); the tests start one with ``tests/jackserver.py``.
"""
from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence

from musicrnn.errors import ConfigError, MusicRNNError
from musicrnn.realtime.jackdrain import drain_jack, jack_connections
from musicrnn.realtime.quiet import quiet_stderr

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


def compiled_apis() -> list[str]:
    """Backends this python-rtmidi build supports, whether or not a server is running."""
    rt = _rtmidi()
    have = set(rt.get_compiled_api())
    return [n for n in _API_NAMES if _api_const(n) in have]


def make_port(kind: str, api: str, client: str):
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
        with quiet_stderr():
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
            make_port("out", api, "musicrnn-probe").delete()
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
    dev = make_port(kind, choose_api(api), "musicrnn-list")
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
    dev = make_port(kind, api, client)
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
        self.client, self.virtual = client, virtual
        self._undrained = False  # sent since the last drain()

    def send(self, message: Sequence[int]) -> None:
        self._dev.send_message(message)
        self._undrained = True

    def drain(self) -> None:
        """Block until everything sent has left the port (JACK delivers once per cycle, so a port
        closed right after a send could lose its last note-off): 3 JACK cycles, else 20 ms."""
        if self._dev is None or not self._undrained:
            return
        if self.api == "jack":
            drain_jack()
        else:
            time.sleep(0.02)
        self._undrained = False

    def listeners(self) -> int | None:
        """How many ports are connected to this virtual port (JACK only); None where it cannot be seen."""
        if self.virtual is None or self.api != "jack":
            return None
        return jack_connections(f"^{re.escape(self.client)}(-[0-9]+)?:{re.escape(self.virtual)}$")

    def close(self) -> None:
        if self._dev is not None:
            self.drain()
            self._dev.close_port()
            self._dev.delete()
            self._dev = None

    def __enter__(self) -> MidiOutput:
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

    def __enter__(self) -> MidiInput:
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
