"""Golden-value tests of ``musicrnn.notes.Notes``: features, ordering, sustain, transposition, MIDI I/O.

Hand-made sequences have exact expected tables; the MIDI round trip uses real bundled MAESTRO files.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from helpers import pretty_midi_bytes
from musicrnn.errors import MidiError
from musicrnn.notes import TICKS_PER_SECOND, Notes

SAMPLE = Path(__file__).resolve().parent.parent / "musicrnn" / "sample_data"
SAMPLE_FILES = sorted(SAMPLE.rglob("*.midi"))


def make(rows) -> Notes:
    """rows of (pitch, start, end, velocity) -> Notes."""
    a = np.array(rows, dtype=np.float64)
    return Notes.from_arrays(a[:, 0], a[:, 1], a[:, 2], a[:, 3])


def as_rows(n: Notes) -> list[tuple]:
    return [(int(p), round(float(s), 6), round(float(e), 6), int(v))
            for p, s, e, v in zip(n.pitch, n.start, n.end, n.velocity)]


# ---- features ------------------------------------------------------------------------------------
def test_features_golden_table():
    n = make([(60, 0.5, 1.0, 80), (64, 0.75, 1.25, 90), (67, 0.75, 2.0, 100), (72, 2.0, 2.125, 1)])
    expected = np.array([
        # pitch, step, duration, velocity
        [60, 0.0, 0.5, 80],     # first note: step 0 by definition
        [64, 0.25, 0.5, 90],
        [67, 0.0, 1.25, 100],   # a chord: same start, step 0
        [72, 1.25, 0.125, 1],
    ], np.float32)
    f4 = n.features(velocity=True)
    assert f4.dtype == np.float32 and f4.shape == (4, 4)
    np.testing.assert_array_equal(f4, expected)
    np.testing.assert_array_equal(n.features(), expected[:, :3])


def test_features_empty():
    assert Notes.empty().features().shape == (0, 3)
    assert Notes.empty().features(velocity=True).shape == (0, 4)


def test_from_features_is_the_inverse():
    n = make([(60, 0.5, 1.0, 80), (64, 0.75, 1.25, 90), (67, 0.75, 2.0, 100), (72, 2.0, 2.125, 1)])
    back = Notes.from_features(n.features(velocity=True), start=float(n.start[0]))
    assert as_rows(back) == as_rows(n)
    # without velocity, the given default velocity is used and the first note starts at ``start``
    back3 = Notes.from_features(n.features(), start=0.0, velocity=70)
    np.testing.assert_allclose(back3.start, n.start - 0.5)
    np.testing.assert_allclose(back3.end - back3.start, n.end - n.start)
    assert back3.velocity.tolist() == [70] * 4


def test_sorted_by_start_then_pitch_and_dtypes():
    n = make([(72, 1.0, 2.0, 50), (60, 1.0, 1.5, 60), (65, 0.0, 3.0, 70), (48, 1.0, 1.1, 80), (50, 0.5, 0.6, 90)])
    assert as_rows(n) == [(65, 0.0, 3.0, 70), (50, 0.5, 0.6, 90), (48, 1.0, 1.1, 80), (60, 1.0, 1.5, 60),
                          (72, 1.0, 2.0, 50)]
    assert n.pitch.dtype == np.int16 and n.velocity.dtype == np.int16
    assert n.start.dtype == np.float64 and n.end.dtype == np.float64


def test_from_arrays_drops_notes_that_do_not_sound_and_clips_velocity():
    n = Notes.from_arrays([60, 61, 62, 63, 200], [0, 1, 2, np.nan, 0], [1, 1, 1.5, 5, 1], [0, 100, 300, 9, 9])
    assert as_rows(n) == [(60, 0.0, 1.0, 1)]  # zero-length, negative, NaN and pitch 200 dropped; vel clipped


def test_slicing_and_len():
    n = make([(60, 0, 1, 80), (62, 1, 2, 80), (64, 2, 3, 80)])
    assert len(n) == 3 and len(n[1:]) == 2 and n[1:].pitch.tolist() == [62, 64]
    assert n[2].pitch.tolist() == [64]
    assert n.duration == 3.0 and Notes.empty().duration == 0.0


# ---- transposition -------------------------------------------------------------------------------
def test_transpose_shifts_and_drops_out_of_range():
    n = make([(0, 0, 1, 80), (60, 1, 2, 80), (120, 2, 3, 80), (127, 3, 4, 80)])
    up = n.transpose(5)
    assert up.pitch.tolist() == [5, 65, 125]  # 127 + 5 is outside MIDI's 0..127: dropped
    down = n.transpose(-3)
    assert down.pitch.tolist() == [57, 117, 124]  # 0 - 3 dropped
    assert down.start.tolist() == [1.0, 2.0, 3.0]
    assert as_rows(n.transpose(0)) == as_rows(n)


# ---- sustain pedal -------------------------------------------------------------------------------
def pedal_midi() -> pretty_midi.PrettyMIDI:
    """A piano part with two pedal presses; the expected note ends are in ``test_sustain_golden``."""
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for pitch, start, end in [
        (62, 0.2, 0.8),   # released before the pedal goes down: unchanged
        (60, 0.5, 1.5),   # released with the pedal down: held to the pedal release at 3.0
        (64, 1.2, 2.0),   # released with the pedal down, but struck again at 2.5: cut at the re-strike
        (64, 2.5, 2.7),   # the re-strike, held to 3.0
        (67, 2.0, 4.0),   # released after the pedal is up: unchanged
        (69, 5.1, 5.5),   # pedal down at 5.0 and never released: held to the last event (CC at 6.0)
    ]:
        piano.notes.append(pretty_midi.Note(velocity=80, pitch=pitch, start=start, end=end))
    for t, v in [(1.0, 127), (2.2, 100), (3.0, 0), (5.0, 64), (6.0, 90)]:  # 64 is down, 63 is up
        piano.control_changes.append(pretty_midi.ControlChange(64, v, t))
    piano.control_changes.append(pretty_midi.ControlChange(7, 0, 1.6))  # volume: not the pedal
    pm.instruments.append(piano)
    return pm


def test_sustain_golden():
    pm = pedal_midi()
    plain = Notes.from_pretty_midi(pm)
    assert as_rows(plain) == [(62, 0.2, 0.8, 80), (60, 0.5, 1.5, 80), (64, 1.2, 2.0, 80), (67, 2.0, 4.0, 80),
                              (64, 2.5, 2.7, 80), (69, 5.1, 5.5, 80)]
    held = Notes.from_pretty_midi(pm, sustain=True)
    assert as_rows(held) == [(62, 0.2, 0.8, 80), (60, 0.5, 3.0, 80), (64, 1.2, 2.5, 80), (67, 2.0, 4.0, 80),
                             (64, 2.5, 3.0, 80), (69, 5.1, 6.0, 80)]


def test_sustain_through_a_midi_file(tmp_path):
    path = tmp_path / "pedal.mid"
    pedal_midi().write(str(path))
    held = Notes.from_midi(path, sustain=True)
    tol = 1.0 / (2 * 220 * 2)  # pretty_midi's default: 220 ticks per beat at 120 bpm
    np.testing.assert_allclose(held.end, [0.8, 3.0, 2.5, 4.0, 3.0, 6.0], atol=tol)
    assert Notes.from_midi(path).end.max() == pytest.approx(5.5, abs=tol)  # off by default


def test_sustain_on_real_file_only_lengthens():
    plain = Notes.from_midi(SAMPLE_FILES[0])
    held = Notes.from_midi(SAMPLE_FILES[0], sustain=True)
    assert len(held) == len(plain)
    np.testing.assert_array_equal(held.pitch, plain.pitch)
    np.testing.assert_array_equal(held.start, plain.start)
    assert (held.end >= plain.end - 1e-9).all() and (held.end > plain.end + 0.05).sum() > len(plain) // 10


# ---- instruments ---------------------------------------------------------------------------------
def test_multitrack_merged_drums_dropped():
    pm = pretty_midi.PrettyMIDI()
    right = pretty_midi.Instrument(program=0)
    left = pretty_midi.Instrument(program=0)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    right.notes += [pretty_midi.Note(90, 72, 0.5, 1.0), pretty_midi.Note(91, 76, 1.0, 1.5)]
    left.notes += [pretty_midi.Note(60, 48, 0.0, 2.0), pretty_midi.Note(61, 55, 1.0, 1.25)]
    drums.notes += [pretty_midi.Note(100, 36, 0.0, 0.1), pretty_midi.Note(100, 38, 0.5, 0.6)]
    pm.instruments += [right, drums, left, pretty_midi.Instrument(program=1)]  # + an empty track
    n = Notes.from_pretty_midi(pm)
    assert as_rows(n) == [(48, 0.0, 2.0, 60), (72, 0.5, 1.0, 90), (55, 1.0, 1.25, 61), (76, 1.0, 1.5, 91)]
    only_drums = pretty_midi.PrettyMIDI()
    only_drums.instruments.append(drums)
    assert len(Notes.from_pretty_midi(only_drums)) == 0


# ---- MIDI files ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", SAMPLE_FILES[:3], ids=lambda p: p.name[:30])
def test_midi_round_trip_real_maestro_file(tmp_path, path):
    n = Notes.from_midi(path)
    assert len(n) > 1000
    out = n.to_midi(tmp_path / "out.mid")
    assert out.exists() and not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file
    back = Notes.from_midi(out)
    half_tick = 0.5 / TICKS_PER_SECOND + 1e-9
    assert len(back) == len(n)
    np.testing.assert_array_equal(back.pitch, n.pitch)
    np.testing.assert_array_equal(back.velocity, n.velocity)
    np.testing.assert_allclose(back.start, n.start, rtol=0, atol=half_tick)
    np.testing.assert_allclose(back.end, n.end, rtol=0, atol=half_tick)


def test_very_short_notes_survive_the_round_trip(tmp_path):
    """Notes shorter than a tick must not hang until the next note-off of their pitch (or vanish)."""
    n = make([(60, 0.0, 0.0001, 80), (60, 3.0, 4.0, 80), (62, 1.0, 1.0002, 80)])
    back = Notes.from_midi(n.to_midi(tmp_path / "short.mid"))
    assert back.pitch.tolist() == [60, 62, 60]
    assert (back.end - back.start).max() < 1.01 and (back.end - back.start)[:2].max() < 0.002


def test_to_midi_writes_the_program_as_pretty_midi_reads_it(tmp_path):
    path = make([(60, 0, 1, 80)]).to_midi(tmp_path / "p5.mid", program=5)
    pm = pretty_midi.PrettyMIDI(str(path))
    assert [i.program for i in pm.instruments] == [5] and len(pm.instruments[0].notes) == 1


def test_to_midi_and_write_midi_are_one_writer_with_pretty_midis_bytes(tmp_path):
    """``to_midi`` (a path, atomically) and ``write_midi`` (an open file) give the bytes pretty_midi
    writes for the same notes: what sampling, the gallery and rendering all write."""
    notes = Notes.from_midi(SAMPLE_FILES[0])[:500]
    buf = io.BytesIO()
    notes.write_midi(buf, program=3)
    assert buf.getvalue() == notes.to_midi(tmp_path / "n.mid", program=3).read_bytes()
    assert buf.getvalue() == pretty_midi_bytes(notes, program=3)


def test_damaged_midi_raises_midi_error(tmp_path):
    data = SAMPLE_FILES[0].read_bytes()
    bad = tmp_path / "bad.mid"
    bad.write_bytes(data[:-3])  # track chunk shorter than its header says
    with pytest.raises(MidiError, match="shorter"):
        Notes.from_midi(bad)
    with pytest.raises(MidiError, match="no such"):
        Notes.from_midi(tmp_path / "missing.mid")
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(MidiError, match="empty"):
        Notes.from_midi(tmp_path / "empty.mid")


def test_written_files_follow_the_umask_not_mkstemp(tmp_path):
    # atomic writes go through mkstemp (mode 0600); a user's MIDI file must be as readable as open()'s
    import os

    from musicrnn.io_utils import file_mode

    path = Notes.from_arrays([60], [0.0], [0.5]).to_midi(tmp_path / "one.mid")
    assert os.stat(path).st_mode & 0o777 == file_mode()
