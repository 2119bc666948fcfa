"""Wait until the JACK server has run enough process cycles to deliver what was sent; see who listens.

Why: rtmidi's JACK output queues each message in a ring buffer that JACK's process callback empties
once per cycle; closing the port right after the last ``send`` can unregister it before the cycle
carrying the last note-off and All Notes Off reached the receiver (1 stuck note in 24 runs with
``--virtual``). Sleeping a fixed time is not enough on a loaded machine without realtime scheduling,
where a cycle can be late; so this counts *cycles*: it opens a tiny, never-activated JACK client with
libjack through ctypes, reads the server's buffer size and its frame clock (``jack_frame_time``,
which the server advances by one period per cycle it runs), and waits until ``cycles`` whole
periods have passed since the call. Without libjack (or a server) it falls back to a wall-clock wait.

The same passive client answers how many connections a port has (``jack_connections``): ``live
--virtual`` waits for a listener before its first note, because notes sent to a port nobody has
connected to yet are lost.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import time

from musicrnn.realtime.quiet import (
    quiet_stderr,  # libjack prints several lines when no server answers
)

JACK_NO_START_SERVER = 0x01
FALLBACK_S = 0.1  # wall-clock wait when the server cannot be asked (2 cycles of 2048 frames at 44.1 kHz)


class JackClock:
    """The JACK server's frame clock and period, through a passive libjack client (never activated)."""

    def __init__(self, name: bytes = b"musicrnn-drain"):
        path = ctypes.util.find_library("jack") or "libjack.so.0"
        lib = ctypes.CDLL(path)
        lib.jack_client_open.restype = ctypes.c_void_p
        lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        for fn in ("jack_get_buffer_size", "jack_get_sample_rate", "jack_frame_time"):
            getattr(lib, fn).restype = ctypes.c_uint32
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
        lib.jack_client_close.argtypes = [ctypes.c_void_p]
        names = ctypes.POINTER(ctypes.c_char_p)  # a NULL-terminated list that the caller frees
        lib.jack_get_ports.restype = names
        lib.jack_get_ports.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
        lib.jack_port_by_name.restype = ctypes.c_void_p
        lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.jack_port_get_all_connections.restype = names
        lib.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.jack_free.argtypes = [ctypes.c_void_p]
        status = ctypes.c_int(0)
        self._lib = lib
        self._client = lib.jack_client_open(name, JACK_NO_START_SERVER, ctypes.byref(status))
        if not self._client:
            raise OSError(f"no JACK server (status {status.value:#x})")
        self.period = int(lib.jack_get_buffer_size(self._client))  # frames per cycle
        self.rate = int(lib.jack_get_sample_rate(self._client))

    def frames(self) -> int:
        return int(self._lib.jack_frame_time(self._client))

    def wait_cycles(self, cycles: int = 3, timeout_s: float = 2.0) -> bool:
        """Block until the server ran ``cycles`` more periods (True), or ``timeout_s`` passed (False)."""
        target = cycles * self.period
        t0, f0 = time.monotonic(), self.frames()
        step = max(self.period / max(self.rate, 1) / 4, 0.0005)
        while (self.frames() - f0) & 0xFFFFFFFF < target:  # frame time wraps at 2^32
            if time.monotonic() - t0 > timeout_s:
                return False
            time.sleep(step)
        return True

    def _names(self, names) -> list[bytes]:
        """The strings of a NULL-terminated list libjack returned, which is then freed."""
        if not names:
            return []
        out, i = [], 0
        while names[i]:
            out.append(names[i])
            i += 1
        self._lib.jack_free(ctypes.cast(names, ctypes.c_void_p))
        return out

    def connections(self, port_regex: str) -> int:
        """Connections of every port whose full name matches ``port_regex`` (any client's ports)."""
        total = 0
        for name in self._names(self._lib.jack_get_ports(self._client, port_regex.encode(), None, 0)):
            port = self._lib.jack_port_by_name(self._client, name)
            if port:
                total += len(self._names(self._lib.jack_port_get_all_connections(self._client, port)))
        return total

    def close(self) -> None:
        if self._client:
            self._lib.jack_client_close(self._client)
            self._client = None


_clocks: dict[str, JackClock] = {}  # per server name: opening a client costs ~0.1-0.6 s, so keep it


def _clock() -> tuple[str, JackClock | None]:
    """The current server's name (JACK_DEFAULT_SERVER) and its passive client; None without one."""
    server = os.environ.get("JACK_DEFAULT_SERVER", "default")
    clock = _clocks.get(server)
    if clock is None:
        try:
            with quiet_stderr():
                clock = _clocks[server] = JackClock()
        except (OSError, AttributeError):
            return server, None
    return server, clock


def jack_connections(port_regex: str) -> int | None:
    """Connections of the ports matching ``port_regex`` on the current server; None if it cannot be asked."""
    return None if (clock := _clock()[1]) is None else clock.connections(port_regex)


def drain_jack(cycles: int = 3, timeout_s: float = 2.0) -> None:
    """Wait for ``cycles`` JACK cycles on the current server (JACK_DEFAULT_SERVER), else FALLBACK_S."""
    server, clock = _clock()
    if clock is None:
        time.sleep(FALLBACK_S)
        return
    if not clock.wait_cycles(cycles, timeout_s):  # a server that stopped: forget its client
        _clocks.pop(server, None)
        clock.close()
        time.sleep(FALLBACK_S)
