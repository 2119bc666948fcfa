"""``python -m musicrnn.live`` end to end over a real JACK server (dummy driver, no sound card).

A tiny LSTM is really trained (``helpers.train_tiny``, once per test run) and streamed through rtmidi's JACK
backend to a second client on the same server, which polls its input port (rtmidi's JACK input
callback garbles messages that share a cycle). What the receiver gets is what a synth would hear:
every note-on has its note-off, nothing hangs, Ctrl-C ends with all notes off. Runs in-process
(``main``) except the Ctrl-C test, which sends a real SIGINT to a subprocess as a terminal does.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import CC, MAESTRO_FILE, ON, assert_no_hanging, ctrl_c, needs_jack
from musicrnn.cli.live import main
from musicrnn.realtime import session

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ckpt(tiny_ckpt) -> Path:
    """A genuinely trained tiny checkpoint; its folder's cache/ holds the bundled sample's note cache."""
    return tiny_ckpt


@pytest.fixture
def in_run(ckpt, monkeypatch):
    """Reuse the note cache train_tiny built, so the default (bundled) prime needs no parsing."""
    monkeypatch.setenv("MUSICRNN_CACHE", str(ckpt.parent / "cache"))
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)
    return ckpt


def refused(argv: list[str], capsys, match: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and match in err[0], err
    return err[0]


def onset_errors_ms(summary, received) -> np.ndarray:
    """Receive time (second client) minus due time, per note-on; requires identical message streams."""
    sent_on = [m.scheduled for m in summary.sent if m.message[0] & 0xF0 == ON]
    recv_on = [t for t, m in received if m[0] & 0xF0 == ON]
    return (np.array(recv_on) - np.array(sent_on)) * 1e3


# ---- no server needed ------------------------------------------------------------------------
@pytest.mark.parametrize("argv, match", [
    (["--rounds", "1"], "--rounds"),
    (["--listen", "kb", "--num-notes", "5"], "--listen"),
    (["--lookahead", "0"], "--lookahead"),
    (["--channel", "17"], "--channel"),
    (["--speed", "-1"], "--speed"),
    (["--connect-timeout", "-1"], "--connect-timeout"),
    (["--count-in", "nan"], "--count-in"),
    (["--threads", "0"], "--threads"),
    (["--api", "nosuchapi", "--port", "x"], "not available"),
])
def test_bad_arguments_are_one_line(argv, match, capsys):
    refused(argv, capsys, match)


@pytest.mark.skipif(os.path.exists("/dev/snd/seq"), reason="this machine has an ALSA sequencer")
def test_no_backend_explains_how_to_get_one(monkeypatch, capsys):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "musicrnn-nonexistent-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    refused(["--list-ports"], capsys, "no usable MIDI backend")
    refused(["--port", "synth"], capsys, "jackd -r -d dummy")


def test_python_m_musicrnn_live_runs_the_cli():
    """The top-level module musicrnn/live.py is what ``python -m musicrnn.live`` runs."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "musicrnn.live", "--api", "nosuchapi", "--list-ports"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: MIDI backend 'nosuchapi' is not available")


def test_count_in_and_a_backend_that_cannot_see_connections():
    """``--count-in`` is silence before the first note on any port; where connections cannot be seen
    (ALSA, CoreMIDI) a virtual port gets a line saying to connect now instead of a wait."""

    class AlsaVirtualPort:  # what ports.MidiOutput reports for a virtual port on ALSA
        api, name, virtual = "alsa", "musicrnn:play", "play"

        def listeners(self):
            return None

    said: list[str] = []
    t0 = time.perf_counter()
    session.wait_for_listener(AlsaVirtualPort(), timeout_s=60, count_in_s=0.3, say=said.append)
    assert 0.3 <= time.perf_counter() - t0 < 1.0
    assert said == ["alsa cannot tell when something connects to musicrnn:play: connect it now "
                    "(--count-in S gives you S seconds)"]


def test_a_second_signal_while_stopping_cannot_leave_notes_hanging():
    """Ctrl-C, then SIGTERM 20 ms later, while the player drains the port before All Notes Off (where a
    second signal used to land and cut the clean-up short): every note still ends, the first signal
    decides what comes out (KeyboardInterrupt, so exit 130), the second is only counted."""

    class SlowDrainPort:  # a JACK port's drain waits for server cycles; this one takes 300 ms
        def __init__(self):
            self.got: list[list[int]] = []
            self.drains = 0

        def send(self, msg):
            self.got.append(list(msg))

        def drain(self):
            self.drains += 1
            time.sleep(0.3)

    def two_signals():
        ctrl_c()
        deadline = time.monotonic() + 2
        while not port.drains and time.monotonic() < deadline:  # the first stop is draining now
            time.sleep(0.001)
        time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    port, caught = SlowDrainPort(), None
    timer = threading.Timer(0.2, two_signals)
    with session.StopSignals() as stop:
        timer.start()
        try:
            session.play(port, [(60, 0.0, 5.0, 80), (64, 0.05, 5.0, 80)], session.LiveSummary())
        except KeyboardInterrupt as e:
            caught = e
        finally:
            timer.join()
    assert type(caught) is KeyboardInterrupt and stop.first == signal.SIGINT and stop.ignored == 1
    assert_no_hanging(port.got, n_notes=2)
    assert port.got[-1] == [CC, 123, 0]


# ---- a real JACK server --------------------------------------------------------------------------
@pytest.mark.jack
@needs_jack
def test_list_ports_and_missing_port(jack, receiver, capsys):
    main(["--list-ports", "--api", "jack"])
    out = capsys.readouterr().out
    assert "MIDI backend: jack" in out and "  receiver:in" in out and "input ports (--listen):" in out
    line = refused(["--port", "no-such-synth", "--api", "jack"], capsys, "'no-such-synth' not found")
    assert "'receiver:in'" in line
    refused(["--port", "receiver:in", "--listen", "no-keyboard", "--api", "jack"], capsys,
            "input port 'no-keyboard' not found")


@pytest.mark.jack
@needs_jack
def test_stream_every_note_arrives_and_ends(jack, receiver, in_run, capsys):
    summary = main(["--ckpt", str(in_run), "--port", "receiver:in", "--api", "jack", "--num-notes", "40",
                    "--seed", "0", "--temperature", "0.8", "--speed", "2"])  # ~4 s of music
    time.sleep(0.1)  # let the last JACK cycle deliver
    got = [m for _, m in receiver.got]
    assert got == [list(m.message) for m in summary.sent]  # everything sent arrived, in order
    assert_no_hanging(got, n_notes=40)
    assert got[-1] == [CC, 123, 0]
    io = capsys.readouterr()
    assert "prime: notes" in io.err and "live: sent 40 notes, " in io.out
    err = onset_errors_ms(summary, receiver.got)
    print(f"\nlive over JACK dummy: notes sent {summary.notes}, note-ons received {len(err)}, "
          f"messages {len(summary.sent)}/{len(got)}; onset error received - due: median "
          f"{np.median(err):.2f} ms, max {err.max():.2f} ms; underruns {summary.underruns}")
    assert summary.notes == 40 and np.median(err) < 20 and err.min() > -1


@pytest.mark.jack
@needs_jack
@pytest.mark.parametrize("signals, code, word", [
    ((signal.SIGINT,), 130, "interrupted"),
    ((signal.SIGTERM,), 143, "terminated"),
    ((signal.SIGINT, signal.SIGTERM), 130, "interrupted"),  # 20 ms apart: the second lands while stopping
    ((signal.SIGTERM, signal.SIGINT), 143, "terminated"),
], ids=["sigint", "sigterm", "sigint-then-sigterm", "sigterm-then-sigint"])
def test_signals_mid_stream_turn_every_note_off(jack, receiver, in_run, signals, code, word):
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # carries JACK_DEFAULT_SERVER of the dummy server
    proc = subprocess.Popen([sys.executable, "-m", "musicrnn.live", "--ckpt", str(in_run), "--api", "jack",
                             "--port", "receiver", "--prime", str(MAESTRO_FILE), "--seed", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while sum(m[0] == ON for _, m in receiver.got) < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        for k, sig in enumerate(signals):
            time.sleep(0.02 * (k > 0))
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    time.sleep(0.1)
    got = [m for _, m in receiver.got]
    assert proc.returncode == code, err[-2000:]
    ons, offs = assert_no_hanging(got)
    assert ons >= 5 and got[-1] == [CC, 123, 0]
    assert "(stopped)" in out and f"live: sent {ons} notes" in out and err.rstrip().endswith(word)
    assert "Traceback" not in err


class LateListener:
    """A second JACK client that connects to live's virtual port ``delay_s`` after the port appears
    (as a person running ``jack_connect`` would) and records what arrives from then on."""

    def __init__(self, port: str, delay_s: float):
        import rtmidi

        self.got: list[tuple[float, list[int]]] = []
        self.connected_at: float | None = None
        self.dev = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="late-rx")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(port, delay_s), daemon=True)
        self._thread.start()

    def _run(self, port: str, delay_s: float) -> None:
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            hits = [i for i, p in enumerate(self.dev.get_ports()) if p.endswith(port)]
            if hits:
                time.sleep(delay_s)
                self.dev.open_port(hits[0])
                self.connected_at = time.perf_counter()
                break
            time.sleep(0.02)
        while not self._stop.is_set():
            m = self.dev.get_message()
            if m is None:
                time.sleep(0.0002)
            else:
                self.got.append((time.perf_counter(), list(m[0])))

    def close(self) -> list[tuple[float, list[int]]]:
        time.sleep(0.05)
        self._stop.set()
        self._thread.join()
        self.dev.delete()
        return self.got


@pytest.mark.jack
@needs_jack
def test_virtual_port_waits_for_a_connection_before_the_first_note(jack, in_run, capsys):
    listener = LateListener("musicrnn:late", delay_s=1.0)
    summary = main(["--ckpt", str(in_run), "--api", "jack", "--virtual", "late", "--num-notes", "8", "--seed", "0",
                    "--speed", "4"])
    got = listener.close()
    assert [m for _, m in got] == [list(m.message) for m in summary.sent]  # the first notes are not lost
    assert_no_hanging([m for _, m in got], n_notes=8)
    assert got[0][0] > listener.connected_at
    assert "waiting up to 60 s for a connection to musicrnn:late" in capsys.readouterr().err


@pytest.mark.jack
@needs_jack
def test_virtual_port_nobody_connects_is_one_error_line(jack, in_run, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["--ckpt", str(in_run), "--api", "jack", "--virtual", "nobody", "--connect-timeout", "0.3",
              "--num-notes", "4"])
    err = capsys.readouterr().err.strip().splitlines()  # what it was about to play, then why it did not
    assert e.value.code == 2 and [x for x in err if x.startswith("error:")] == err[-1:]
    assert "nothing connected to musicrnn:nobody within 0.3 s" in err[-1] and "--connect-timeout" in err[-1]


@pytest.mark.jack
@needs_jack
def test_listen_answers_a_played_phrase(jack, receiver, in_run, capsys):
    import rtmidi

    phrase = [(0.0, [ON, 60, 90]), (0.1, [ON, 64, 80]), (0.2, [ON | 0, 60, 0]), (0.25, [ON, 67, 70]),
              (0.3, [0x80, 64, 0]), (0.4, [0x80, 67, 0])]
    sent_at: list[float] = []

    def keyboard():  # a second client plays into live's virtual input port once it exists
        kb = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="keyboard")
        try:
            deadline = time.monotonic() + 30
            while not any("musicrnn-in:listen" in p for p in kb.get_ports()) and time.monotonic() < deadline:
                time.sleep(0.05)
            kb.open_port([i for i, p in enumerate(kb.get_ports()) if "musicrnn-in:listen" in p][0])
            time.sleep(1.0)  # live loads the model after opening its ports
            start = time.perf_counter()
            for t, msg in phrase:
                time.sleep(max(0.0, start + t - time.perf_counter()))
                kb.send_message(msg)
                sent_at.append(time.perf_counter())
            time.sleep(0.5)
        finally:
            kb.delete()

    th = threading.Thread(target=keyboard, daemon=True)
    th.start()
    watchdog = threading.Timer(40, ctrl_c)  # never hang the suite if the phrase is missed
    watchdog.start()
    try:
        summary = main(["--ckpt", str(in_run), "--api", "jack", "--port", "receiver:in", "--listen-virtual",
                        "listen", "--pause", "0.4", "--answer-notes", "8", "--rounds", "1", "--seed", "0"])
    finally:
        watchdog.cancel()
    th.join(5)
    time.sleep(0.1)
    got = [m for _, m in receiver.got]
    assert got == [list(m.message) for m in summary.sent]  # the answer only: the phrase is not echoed
    assert_no_hanging(got, n_notes=8)
    first_on = next(t for t, m in receiver.got if m[0] == ON)
    assert first_on >= sent_at[-1] + 0.4  # answered after the pause, not while the phrase played
    err = capsys.readouterr().err
    assert "heard 3 notes (fewer than the model's 8" in err and summary.rounds == 1
