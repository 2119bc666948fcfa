"""The end of a live stream is deterministic — drain, All Notes Off, then close.

Seen before the fix: 1 stuck note in 24 runs with ``--virtual`` (60 note-ons, 59 note-offs, no All
Notes Off, exit 0): the port was closed right after the last send, before JACK's next cycle delivered
it. Here ``python -m musicrnn.live --virtual`` (in-process ``main``) streams 24 consecutive times to a
receiver connected to ``musicrnn:<name>`` on a JACK dummy server; every run must deliver every
message sent, note-ons and note-offs balanced, and end with All Notes Off.
"""
from __future__ import annotations

import time

import pytest

from helpers import CC, ON, assert_no_hanging, needs_jack
from musicrnn.cli.live import main
from musicrnn.realtime import ports as mp

RUNS = 24
NOTES = 10


class VirtualReceiver:
    """Connects a second JACK client's input to ``musicrnn:<name>`` once live created it; polls it."""

    def __init__(self, port_name: str):
        import threading

        import rtmidi

        self.got: list[list[int]] = []
        self.dev = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="drain-rx")
        ports = self.dev.get_ports()
        idx = [i for i, p in enumerate(ports) if p == port_name or p.endswith(port_name)]
        assert idx, f"{port_name} not among {ports}"
        self.dev.open_port(idx[0])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            m = self.dev.get_message()
            if m is None:
                time.sleep(0.0002)
            else:
                self.got.append(list(m[0]))

    def close(self) -> list[list[int]]:
        time.sleep(0.05)  # read out what already arrived in the receiver's own queue
        self._stop.set()
        self._thread.join()
        self.dev.close_port()
        self.dev.delete()
        return self.got


@pytest.mark.jack
@needs_jack
def test_virtual_stream_ends_with_every_note_off_over_many_runs(jack, tiny_ckpt, monkeypatch, capsys):
    ckpt = tiny_ckpt
    monkeypatch.setenv("MUSICRNN_CACHE", str(ckpt.parent / "cache"))
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)
    receivers: list[VirtualReceiver] = []
    real_open = mp.open_output

    def open_and_connect(*args, **kwargs):  # connect as `jack_connect` would, before any note is sent
        out = real_open(*args, **kwargs)
        receivers.append(VirtualReceiver(out.name))
        return out

    monkeypatch.setattr(mp, "open_output", open_and_connect)
    failures = []
    for run in range(RUNS):
        summary = main(["--ckpt", str(ckpt), "--api", "jack", "--virtual", "drain", "--num-notes", str(NOTES),
                        "--seed", str(run), "--speed", "4", "--lookahead", "0.2"])
        got = receivers[-1].close()  # main returned: the port is closed, nothing more may come
        sent = [list(m.message) for m in summary.sent]
        ons = sum(m[0] & 0xF0 == ON and m[2] > 0 for m in got)
        offs = sum(m[0] & 0xF0 == 0x80 or (m[0] & 0xF0 == ON and m[2] == 0) for m in got)
        if got != sent or ons != offs or not got or got[-1] != [CC, 123, 0]:
            failures.append(f"run {run}: {ons} note-ons, {offs} note-offs, {len(got)}/{len(sent)} messages, "
                            f"last {got[-1:]}")
            continue
        assert_no_hanging(got, n_notes=NOTES)
    assert capsys.readouterr().out.count(f"live: sent {NOTES} notes") == RUNS
    assert not failures, "\n".join(failures)
