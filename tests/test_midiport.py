"""Real-time MIDI output: Player scheduling (in-memory port) and end-to-end over a dummy JACK server.

The JACK tests run a real ``jackd -d dummy`` (no sound card needed), send through rtmidi's JACK
backend and receive with a second rtmidi client: what they check is what a synth would hear.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from helpers import CC, OFF, ON, assert_no_hanging, ctrl_c, needs_jack
from musicrnn.errors import ConfigError, MusicRNNError
from musicrnn.notes import Notes
from musicrnn.realtime import ports as mp
from musicrnn.realtime.player import Player
from musicrnn.realtime.recording import notes_from_events, record_phrase


class MemoryPort:
    """An in-memory port: records (perf_counter, message). The Player is what is under test."""

    def __init__(self):
        self.got: list[tuple[float, list[int]]] = []

    def send(self, msg):
        self.got.append((time.perf_counter(), list(msg)))


def stream(n=50, step=0.05, seed=0):
    """n notes every ``step`` s on 5 pitches with random lengths: overlaps and re-strikes guaranteed."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        dur = float(rng.uniform(0.03, 0.4))
        yield (60 + int(rng.integers(0, 5)), i * step, i * step + dur, int(rng.integers(40, 110)))


def test_player_restrikes_and_overlaps_balanced():
    port = MemoryPort()
    notes = list(stream(30, step=0.02))
    stats = Player(port, iter(notes), lead_s=0.02).play()
    msgs = [m for _, m in port.got]
    assert_no_hanging(msgs, n_notes=30)
    assert msgs[-1] == [CC, 123, 0]
    assert stats.notes == 30 and stats.underruns == 0 and not stats.stopped
    assert stats.onset_error_median_ms < 5


def test_restrike_policy_keeps_pitch_until_last_end():
    # A long note and a short re-strike inside it: off+on at the re-strike, one off at the long end.
    port = MemoryPort()
    p = Player(port, [(60, 0.0, 0.3, 80), (60, 0.1, 0.15, 90)], lead_s=0.01)
    p.play()
    t0 = p.t0
    seq = [(round(t - t0, 2), m) for t, m in port.got]
    assert [m for _, m in seq] == [[ON, 60, 80], [OFF, 60, 0], [ON, 60, 90], [OFF, 60, 0], [CC, 123, 0]]
    assert abs(seq[3][0] - 0.3) < 0.02  # the pitch sounds until the *last* overlapping note ends


def test_notes_and_chunks_as_source_and_channel():
    port = MemoryPort()
    chunk = Notes.from_arrays([60, 64], [0.0, 0.02], [0.05, 0.06], [100, 90])
    Player(port, [chunk, (67, 0.03, 0.05, 70, 3)], channel=1, lead_s=0.01).play()
    msgs = [m for _, m in port.got]
    assert_no_hanging(msgs, n_notes=3)
    assert [ON | 1, 60, 100] in msgs and [ON | 3, 67, 70] in msgs
    assert [CC | 1, 123, 0] in msgs and [CC | 3, 123, 0] in msgs


def test_underrun_shifts_clock_instead_of_bunching():
    def slow():
        for i, note in enumerate(stream(10, step=0.03)):
            if i == 5:
                time.sleep(0.3)  # a slow generation step
            yield note

    port = MemoryPort()
    player = Player(port, slow(), lead_s=0.02, lookahead_s=0.05)
    stats = player.play()
    # the producer ran ahead by 5 notes, so note 5 (due at lead 0.02 + 0.15 s) is ~0.13 s late
    assert stats.underruns == 1 and 0.08 < stats.shifted_s < 0.3
    on_times = [t for t, m in port.got if m[0] & 0xF0 == ON]
    gaps = np.diff(on_times)
    assert abs(gaps[4] - (0.03 + stats.shifted_s)) < 0.015  # the stall, as one pause
    assert np.all(np.abs(np.delete(gaps, 4) - 0.03) < 0.015)  # spacing kept after it: no bunching
    assert_no_hanging([m for _, m in port.got], n_notes=10)


def test_lookahead_bounds_how_far_the_producer_runs():
    pulled = []

    def gen():
        for i in range(1000):
            pulled.append(time.perf_counter())
            yield (60, i * 0.1, i * 0.1 + 0.05, 80)

    player = Player(MemoryPort(), gen(), lookahead_s=0.2, buffer_notes=8, lead_s=0.0)
    player.start()
    time.sleep(0.25)
    player.stop()
    stats = player.join(2)
    assert stats.stopped
    # at t=0.25 s: notes starting <= 0.45 s scheduled (5), 8 buffered, 1 in the producer's hand;
    # not all 1000 (one more for timing slack)
    assert 5 + 8 <= len(pulled) <= 5 + 8 + 1 + 1


def test_stop_mid_stream_turns_everything_off():
    port = MemoryPort()
    player = Player(port, [(p, 0.0, 5.0, 80) for p in (60, 64, 67)], lead_s=0.0)
    player.start()
    time.sleep(0.1)
    player.stop()
    stats = player.join(2)
    msgs = [m for _, m in port.got]
    assert stats.stopped and stats.notes == 3
    assert_no_hanging(msgs, n_notes=3)
    assert msgs[-1] == [CC, 123, 0]


def test_keyboard_interrupt_turns_everything_off_and_propagates():
    port = MemoryPort()
    timer = threading.Timer(0.15, ctrl_c)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        Player(port, [(60, 0.0, 5.0, 80), (62, 0.05, 5.0, 80)], lead_s=0.0).play()
    timer.cancel()
    assert_no_hanging([m for _, m in port.got], n_notes=2)


def test_generator_error_propagates_after_all_notes_off():
    def broken():
        yield (60, 0.0, 5.0, 80)
        time.sleep(0.05)
        raise ValueError("model blew up")

    port = MemoryPort()
    with pytest.raises(ValueError, match="model blew up"):
        Player(port, broken(), lead_s=0.0).play()
    assert_no_hanging([m for _, m in port.got], n_notes=1)


def test_notes_from_events_pairs_and_closes():
    ev = [(1.0, [ON, 60, 90]), (1.2, [ON, 64, 70]), (1.5, [ON, 60, 0]),  # vel-0 on == off
          (1.6, [ON, 64, 80]),  # re-strike closes the held 64
          (1.7, [CC, 64, 127]), (2.0, [OFF, 64, 0]), (2.1, [ON, 67, 50])]  # 67 never released
    n = notes_from_events(ev, end_time=2.5)
    assert n.pitch.tolist() == [60, 64, 64, 67]
    np.testing.assert_allclose(n.start, [0.0, 0.2, 0.6, 1.1])
    np.testing.assert_allclose(n.end, [0.5, 0.6, 1.0, 1.5])
    assert n.velocity.tolist() == [90, 70, 80, 50]
    assert len(notes_from_events([])) == 0


def test_unknown_backend_is_a_config_error():
    with pytest.raises(ConfigError, match="not available"):
        mp.list_ports(api="nosuchapi")


@pytest.mark.skipif(os.path.exists("/dev/snd/seq"), reason="this machine has an ALSA sequencer")
def test_no_backend_explains_how_to_get_one(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "musicrnn-nonexistent-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    assert mp.available_apis() == []
    with pytest.raises(MusicRNNError, match="no usable MIDI backend.*jackd -r -d dummy") as e:
        mp.open_output("anything")
    assert "\n" not in str(e.value)


# ---- end to end over a real (dummy-driver) JACK server -----------------------------------------
@pytest.mark.jack
@needs_jack
def test_jack_backend_is_found(jack, receiver):
    assert "jack" in mp.available_apis()
    assert "receiver:in" in mp.list_ports("jack")


@pytest.mark.jack
@needs_jack
def test_jack_stream_every_note_arrives_on_time(jack, receiver):
    notes = list(stream(50, step=0.05, seed=1))  # 2.5 s, overlapping, re-struck pitches
    with mp.open_output("receiver:in", api="jack") as out:
        player = Player(out, iter(notes))
        stats = player.play()
        time.sleep(0.1)  # let the last JACK cycle deliver
    got = [m for _, m in receiver.got]
    assert got == [list(m.message) for m in player.sent]  # everything sent arrived, in order
    assert_no_hanging(got, n_notes=50)
    assert got[-1] == [CC, 123, 0]
    # onset error: receive time (second client) minus scheduled time, note-ons only
    sent_on = [m for m in player.sent if m.message[0] & 0xF0 == ON]
    recv_on = [t for t, m in receiver.got if m[0] & 0xF0 == ON]
    err_ms = (np.array(recv_on) - np.array([m.scheduled for m in sent_on])) * 1e3
    print(f"\nJACK onset error over {len(err_ms)} notes: median {np.median(err_ms):.2f} ms, "
          f"max {err_ms.max():.2f} ms (send-side median {stats.onset_error_median_ms:.3f} ms), "
          f"underruns {stats.underruns}")
    assert stats.underruns == 0
    assert np.median(err_ms) < 20 and err_ms.min() > -1  # one 5.3 ms JACK period + scheduling


@pytest.mark.jack
@needs_jack
def test_jack_missing_port_names_the_available_ones(jack, receiver):
    with pytest.raises(MusicRNNError) as e:
        mp.open_output("no-such-synth", api="jack")
    msg = str(e.value)
    assert "'no-such-synth'" in msg and "'receiver:in'" in msg and "\n" not in msg


@pytest.mark.jack
@needs_jack
def test_jack_ctrl_c_mid_stream_sends_all_notes_off(jack, receiver):
    long_notes = [(p, 0.05 * i, 10.0, 80) for i, p in enumerate((48, 52, 55, 60))]
    with mp.open_output("receiver", api="jack") as out:  # substring match
        timer = threading.Timer(0.4, ctrl_c)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            Player(out, long_notes, lead_s=0.0).play()
        timer.cancel()
        time.sleep(0.1)
    got = [m for _, m in receiver.got]
    assert_no_hanging(got, n_notes=4)
    assert got[-1] == [CC, 123, 0]


@pytest.mark.jack
@needs_jack
def test_jack_record_phrase_from_input_port(jack):
    import rtmidi

    with mp.open_input(virtual="listen", api="jack") as inp:
        sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="keyboard")
        sender.open_port([i for i, p in enumerate(sender.get_ports()) if "listen" in p][0])

        def play():
            for t, msg in [(0.0, [ON, 60, 90]), (0.1, [ON, 64, 80]), (0.2, [OFF, 60, 0]),
                           (0.25, [ON, 67, 70]), (0.3, [OFF, 64, 0]), (0.4, [ON, 67, 0])]:
                time.sleep(max(0.0, start + t - time.perf_counter()))
                sender.send_message(msg)

        start = time.perf_counter() + 0.2
        th = threading.Thread(target=play)
        th.start()
        phrase = record_phrase(inp, pause_s=0.3, wait_s=3.0)
        th.join()
        sender.close_port()
        sender.delete()
    assert phrase.pitch.tolist() == [60, 64, 67]
    np.testing.assert_allclose(phrase.start, [0.0, 0.1, 0.25], atol=0.02)
    np.testing.assert_allclose(phrase.end, [0.2, 0.3, 0.4], atol=0.02)
    assert phrase.velocity.tolist() == [90, 80, 70]
