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

from musicrnn.cli.live import main
from helpers import CC, MAESTRO_FILE, ON, assert_no_hanging, ctrl_c, needs_jack

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
def test_sigint_mid_stream_turns_all_notes_off(jack, receiver, in_run):
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # carries JACK_DEFAULT_SERVER of the dummy server
    proc = subprocess.Popen([sys.executable, "-m", "musicrnn.live", "--ckpt", str(in_run), "--api", "jack",
                             "--port", "receiver", "--prime", str(MAESTRO_FILE), "--seed", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while sum(m[0] == ON for _, m in receiver.got) < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    time.sleep(0.1)
    got = [m for _, m in receiver.got]
    assert proc.returncode == 130, err[-2000:]
    ons, offs = assert_no_hanging(got)
    assert ons >= 5 and got[-1] == [CC, 123, 0]
    assert "(stopped)" in out and f"live: sent {ons} notes" in out and "interrupted" in err


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
