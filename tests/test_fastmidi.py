"""The fast note reader (``musicrnn.midi.fast``) gives exactly pretty_midi's notes, or says why not.

Random files exercise what MAESTRO rarely has (double note-ons, note-off at the note-on's tick, spurious
note-offs, velocity-0 note-ons, several channels and tracks, drums, program changes, tempo maps, running
status over meta events); the ``maestro`` test compares real files bit for bit, with and without sustain.
"""
from __future__ import annotations

import random
from pathlib import Path

import mido
import pytest

from musicrnn.errors import MidiError
from musicrnn.midi import fast as fastmidi
from musicrnn.notes import Notes

REASONS = ("sysex event", "meta event", "odd set-tempo event", "odd time-signature event",
           "running status of a 1-data-byte event", "several programs on one channel",
           "pedal events under another program", "SMPTE or zero time division", "tick beyond")


def _read(path, sustain: bool, fast: bool):
    try:
        return Notes._read_midi(path, sustain, fast)
    except MidiError as e:
        return str(e), None


def assert_identical(path) -> str | None:
    """Fast and pretty_midi-only reads agree bit for bit (or fail alike); returns the fallback reason."""
    reason = None
    for sustain in (False, True):
        (a, why), (b, _) = _read(path, sustain, True), _read(path, sustain, False)
        reason = why
        if isinstance(a, str) or isinstance(b, str):
            assert a == b, (path, sustain)
            continue
        for name in ("pitch", "start", "end", "velocity"):
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), (path, sustain, name)
    assert reason is None or reason.startswith(REASONS), reason
    return reason


def _random_midi(rng: random.Random) -> mido.MidiFile:
    mid = mido.MidiFile(type=1, ticks_per_beat=rng.choice([96, 220, 384, 480, 960]))
    meta = mido.MidiTrack()
    mid.tracks.append(meta)
    t = 0
    for _ in range(rng.randint(0, 4)):  # tempo map: changes at tick 0, repeats, later changes
        tick = rng.choice([0, 0, rng.randint(0, 3000)])
        tick = max(tick, t)
        meta.append(mido.MetaMessage("set_tempo", tempo=rng.choice([300000, 500000, 500000, 714286, 1234567]),
                                     time=tick - t))
        t = tick
    if rng.random() < 0.5:
        meta.append(mido.MetaMessage("time_signature", numerator=rng.choice([3, 4]), denominator=4))
    if rng.random() < 0.05:
        meta.append(mido.MetaMessage("key_signature", key="D"))
    for _ in range(rng.randint(1, 3)):
        track = mido.MidiTrack()
        mid.tracks.append(track)
        if rng.random() < 0.3:
            track.append(mido.MetaMessage("track_name", name="piano"))
        channels = rng.sample([0, 1, 2, 9], rng.randint(1, 2))
        rare = rng.random() < 0.3  # program changes, 1-data-byte events, sysex: a few files only
        for _ in range(rng.randint(0, 120)):
            ch, pitch = rng.choice(channels), rng.randint(58, 62)  # few pitches: many overlaps
            r = rng.random()
            dt = rng.choice([0, 0, 1, rng.randint(0, 200)])
            if r < 0.40:
                msg = mido.Message("note_on", channel=ch, note=pitch, velocity=rng.randint(1, 127), time=dt)
            elif r < 0.60:
                msg = mido.Message("note_on", channel=ch, note=pitch, velocity=0, time=dt)
            elif r < 0.75:
                msg = mido.Message("note_off", channel=ch, note=pitch, velocity=rng.randint(0, 127), time=dt)
            elif r < 0.88:
                msg = mido.Message("control_change", channel=ch, control=rng.choice([64, 64, 67]),
                                   value=rng.randint(0, 127), time=dt)
            elif r < 0.92:
                msg = mido.Message("pitchwheel", channel=ch, pitch=rng.randint(-8192, 8191), time=dt)
            elif r < 0.95 and rare:
                msg = mido.Message("program_change", channel=ch, program=rng.choice([0, 0, 5]), time=dt)
            elif r < 0.97:
                msg = mido.MetaMessage("text", text="x" * rng.choice([1, 200]), time=dt)
            elif r < 0.985 and rare:
                msg = mido.Message("aftertouch", channel=ch, value=3, time=dt)
            elif r < 0.99 and rare:
                msg = mido.Message("sysex", data=[1, 2, 3], time=dt)
            else:
                msg = mido.Message("note_on", channel=ch, note=pitch, velocity=rng.randint(1, 127), time=dt)
            track.append(msg)
    return mid


def test_random_files_match_pretty_midi(tmp_path: Path):
    rng = random.Random(11)
    reasons = []
    for k in range(150):
        path = tmp_path / f"r{k}.mid"
        _random_midi(rng).save(path)
        reasons.append(assert_identical(path))
    fast = sum(r is None for r in reasons)
    assert fast >= 75, reasons  # most random files take the fast path (the rest fall back, with a reason)


def _raw_file(tracks: list[bytes], division: int = 480) -> bytes:
    out = b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + len(tracks).to_bytes(2, "big")
    out += division.to_bytes(2, "big")
    for t in tracks:
        out += b"MTrk" + len(t).to_bytes(4, "big") + t
    return out


def test_running_status_over_meta_and_long_varlens(tmp_path: Path):
    tempo = b"\x00\xff\x51\x03\x07\xa1\x20" + b"\x83\x60\xff\x51\x03\x0f\x42\x40" + b"\x00\xff\x2f\x00"
    notes = (b"\x00\x90\x3c\x40" b"\x81\x00\x3e\x50"  # note-ons, the second by running status
             b"\x00\xff\x01\x02hi"  # a meta event keeps running status (as mido and MAESTRO do)
             b"\x82\x80\x00\x3c\x00"  # 3-byte delta, running-status note-on velocity 0 (= note-off)
             b"\x00\xb0\x40\x7f" b"\x10\x40\x00"  # pedal down, up (running status)
             b"\x00\x3e\x00"  # running status of the controller: CC62, not a note
             b"\x80\x81\x80\x00\x80\x3e\x00"  # 4-byte delta (16384 ticks), explicit note-off
             b"\x00\xff\x2f\x00")
    path = tmp_path / "raw.mid"
    path.write_bytes(_raw_file([tempo, notes]))
    assert assert_identical(path) is None
    n = Notes.from_midi(path)
    assert n.pitch.tolist() == [60, 62] and n.end[1] > 30  # the 4-byte delta was read


def test_reasons_for_what_it_does_not_read(tmp_path: Path):
    base = b"\x00\x90\x3c\x40\x10\x80\x3c\x00"
    cases = {
        "sysex event": b"\x00\xf0\x02\x01\xf7" + base,
        "meta event 0x59": b"\x00\xff\x59\x02\x00\x00" + base,
        "odd set-tempo event": b"\x00\xff\x51\x02\x07\xa1" + base,
        "running status of a 1-data-byte event": b"\x00\xc0\x05\x00\x06" + base,
    }
    for reason, events in cases.items():
        data = _raw_file([events + b"\x00\xff\x2f\x00"])
        assert fastmidi.instruments(data) == reason
        path = tmp_path / "x.mid"
        path.write_bytes(data)
        assert_identical(path)
    assert isinstance(fastmidi.instruments(_raw_file([base + b"\x00\xff\x2f\x00"])), list)
    assert fastmidi.instruments(_raw_file([base + b"\x00\xff\x2f\x00"], division=0xE728)).startswith("SMPTE")


@pytest.mark.maestro
@pytest.mark.slow
def test_maestro_files_bit_identical_to_pretty_midi(maestro_root: Path):
    files = sorted(maestro_root.glob("*/*.midi"))
    sample = random.Random(0).sample(files, 40)
    reasons = [assert_identical(f) for f in sample]
    assert reasons.count(None) == len(sample), reasons  # every MAESTRO file takes the fast path
