"""Bad input end to end: damaged MIDI files and unsafe checkpoints give one clear error, never a crash.

MIDI files are built byte by byte (the damage real files have: truncation, wrong chunk lengths,
running status, absurd tempos, odd note pairs) plus mutations of real MAESTRO files (hypothesis).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicrnn.errors import CheckpointError, MidiError
from musicrnn.notes import Notes

SAMPLE = Path(__file__).resolve().parents[1] / "musicrnn" / "sample_data"
REAL = sorted(SAMPLE.rglob("*.midi"))


# ---- raw MIDI builders -----------------------------------------------------------------------------
def _chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack(">I", len(body)) + body


def _hdr(fmt: int, ntracks: int, division: int = 480) -> bytes:
    return _chunk(b"MThd", struct.pack(">HHH", fmt, ntracks, division))


def _trk(events: bytes) -> bytes:
    return _chunk(b"MTrk", events + b"\x00\xff\x2f\x00")


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _note(pitch: int = 60, channel: int = 0, ticks: int = 480) -> bytes:
    return bytes([0, 0x90 | channel, pitch, 64]) + _vlq(ticks) + bytes([0x80 | channel, pitch, 64])


def _tempo(us_per_beat: int) -> bytes:
    return b"\x00\xff\x51\x03" + us_per_beat.to_bytes(3, "big")


REAL_BYTES = REAL[0].read_bytes() if REAL else b""

# name -> (bytes, expected): "error" = must raise MidiError (one line); int = exactly that many notes.
# Readers are lenient where a real file is still usable (running status after a meta event, a stray
# note-off, format 2) and refuse what has no sound timing (tempo or division 0, SMPTE time, deltas past
# the corrupt-tick limit) or data bytes >= 0x80.
CASES: dict[str, tuple[bytes, object]] = {
    "empty": (b"", "error"),
    "not_midi": (b"RIFF" + bytes(100), "error"),
    "header_only": (_hdr(1, 0)[:10], "error"),
    "zero_tracks": (_hdr(1, 0), "error"),
    "truncated": (REAL_BYTES[: len(REAL_BYTES) // 2], "error"),
    "truncated_header": (REAL_BYTES[:20], "error"),
    "chunk_too_long": (_hdr(0, 1) + b"MTrk" + struct.pack(">I", 1000) + _note() + b"\x00\xff\x2f\x00", "error"),
    "chunk_too_short": (_hdr(0, 1) + b"MTrk" + struct.pack(">I", 4) + _note() + b"\x00\xff\x2f\x00", "error"),
    "fewer_tracks_than_header": (_hdr(1, 3) + _trk(_note()), "error"),
    "running_status_at_start": (_hdr(0, 1) + _trk(b"\x00\x3c\x40" + _note()), "error"),
    "running_status_after_meta": (_hdr(0, 1) + _trk(b"\x00\x90\x3c\x40\x00\xff\x01\x01a\x00\x3e\x40"
                                                   + _vlq(100) + b"\x80\x3c\x40"), 1),  # 62 never ends
    "running_status_ok": (_hdr(0, 1) + _trk(b"\x00\x90\x3c\x40\x00\x3e\x40" + _vlq(100) + b"\x3c\x00\x00\x3e\x00"), 2),
    "tempo_zero": (_hdr(0, 1) + _trk(_tempo(0) + _note()), "error"),
    "tempo_huge": (_hdr(0, 1) + _trk(_tempo(0xFFFFFF) + _note()), 1),
    "division_zero": (_hdr(0, 1, 0) + _trk(_note()), "error"),
    "division_smpte": (_hdr(0, 1, 0xE728) + _trk(_note()), "error"),  # pretty_midi cannot time it
    "zero_length_note": (_hdr(0, 1) + _trk(b"\x00\x90\x3c\x40\x00\x80\x3c\x40" + _note(62)), 1),
    "off_before_on": (_hdr(0, 1) + _trk(b"\x00\x80\x3c\x40" + _vlq(10) + b"\x90\x3c\x40" + _note(62)), 1),
    "on_without_off": (_hdr(0, 1) + _trk(b"\x00\x90\x3c\x40\x00\x90\x3e\x40"), 0),
    "drums_only": (_hdr(0, 1) + _trk(b"\x00\x99\x24\x40" + _vlq(100) + b"\x89\x24\x40"), 0),
    "format0": (_hdr(0, 1) + _trk(_note(60) + _note(62)), 2),
    "format1": (_hdr(1, 2) + _trk(_tempo(500000)) + _trk(_note(60) + _note(64)), 2),
    "format2": (_hdr(2, 2) + _trk(_note(60)) + _trk(_note(64)), 2),
    "huge_delta": (_hdr(0, 1) + _trk(_vlq(0x0FFFFFFF) + b"\x90\x3c\x40" + _vlq(480) + b"\x80\x3c\x40"), "error"),
    "many_huge_deltas": (_hdr(0, 1) + _trk((_vlq(0x0FFFFFFF) + b"\xff\x01\x00") * 16 + _note()), "error"),
    "sysex_len_overflow": (_hdr(0, 1) + _trk(b"\x00\xf0\x8f\xff\xff\x7f\x00" + _note()), "error"),
    "meta_len_overflow": (_hdr(0, 1) + _trk(b"\x00\xff\x01\x8f\xff\xff\x7f" + _note()), "error"),
    "pitch_out_of_range": (_hdr(0, 1) + _trk(b"\x00\x90\xff\x40" + _vlq(10) + b"\x80\xff\x40"), "error"),
    # a note-on of velocity 13 followed by a delta of 10 ticks (bytes 0D 0A), then CR-LF -> LF damage
    "line_ending_damage": ((_hdr(0, 1) + _trk(b"\x00\x90\x3c\x0d\x0a\x80\x3c\x40" + _note(62)))
                           .replace(b"\r\n", b"\n"), "error"),
}


@contextlib.contextmanager
def _time_limit(seconds: int):
    """Fail (not hang) if the block runs longer than ``seconds``."""
    def _raise(signum, frame):
        raise TimeoutError(f"took more than {seconds}s — a hang")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _read(path) -> Notes | MidiError:
    """Notes.from_midi, where MidiError is an allowed answer and anything else fails the test."""
    with _time_limit(20):
        try:
            return Notes.from_midi(path)
        except MidiError as e:
            assert "\n" not in str(e), "MidiError must be one line"
            return e


@pytest.mark.parametrize("name", sorted(CASES))
def test_damaged_midi_raises_only_midierror(tmp_path, name):
    data, expected = CASES[name]
    path = tmp_path / f"{name}.mid"
    path.write_bytes(data)
    out = _read(path)
    if expected == "error":
        assert isinstance(out, MidiError), f"{name}: expected MidiError, got {out!r}"
    else:
        assert isinstance(out, Notes) and len(out) == expected, f"{name}: expected {expected} notes, got {out!r}"
    if isinstance(out, Notes) and len(out):  # whatever is returned is usable
        assert np.all(out.end > out.start) and np.all(np.isfinite(out.end))
        assert out.pitch.min() >= 0 and out.pitch.max() < 128


def test_multitrack_non_piano_with_drums_is_merged_without_drums(tmp_path):
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    for program, channel, pitches in ((40, 0, [60, 62]), (73, 1, [72]), (0, 9, [36, 38, 42])):  # violin, flute, drums
        t = mido.MidiTrack()
        t.append(mido.Message("program_change", program=program, channel=channel, time=0))
        for p in pitches:
            t.append(mido.Message("note_on", note=p, velocity=80, channel=channel, time=0))
            t.append(mido.Message("note_off", note=p, velocity=0, channel=channel, time=240))
        mid.tracks.append(t)
    path = tmp_path / "band.mid"
    mid.save(path)
    notes = Notes.from_midi(path)
    assert sorted(notes.pitch.tolist()) == [60, 62, 72]  # drums 36/38/42 dropped
    assert list(notes.start) == sorted(notes.start)


def test_huge_file_parses_every_note(tmp_path):
    body = b"".join(bytes([0, 0x90, 40 + i % 40, 64]) + _vlq(10) + bytes([0x80, 40 + i % 40, 64]) for i in range(30000))
    path = tmp_path / "huge.mid"
    path.write_bytes(_hdr(0, 1) + _trk(body))
    out = _read(path)
    assert isinstance(out, Notes) and len(out) == 30000, out
    assert sorted(set(out.pitch.tolist())) == list(range(40, 80))


# ---- mutations of real MAESTRO files -----------------------------------------------------------------
def _small_real(path: Path, events: int = 120) -> bytes:
    """The first ``events`` events of each track of a real MAESTRO file: real bytes, fast to parse."""
    src = mido.MidiFile(path)
    out = mido.MidiFile(type=src.type, ticks_per_beat=src.ticks_per_beat)
    for track in src.tracks:
        t = mido.MidiTrack([m for m in track[:events] if m.type != "end_of_track"])
        out.tracks.append(t)
    buf = io.BytesIO()
    out.save(file=buf)
    return buf.getvalue()


SMALL_REAL = [_small_real(p) for p in REAL[:3]]

_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 8)),
)


def _mutate(data: bytes, mutations) -> bytes:
    b = bytearray(data)
    for kind, pos, arg in mutations:
        if not b:
            break
        i = pos % len(b)
        if kind == "flip":
            b[i] ^= arg
        elif kind == "truncate":
            del b[i:]
        elif kind == "insert":
            b[i:i] = bytes([arg])
        else:
            del b[i : i + arg]
    return bytes(b)


# No hypothesis deadline: _read has its own hang guard (20 s), and a per-example deadline only
# measures how busy the machine is.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, max(0, len(SMALL_REAL) - 1)), mutations=st.lists(_mutation, min_size=1, max_size=4))
def test_mutated_real_midi_raises_only_midierror(tmp_path, which, mutations):
    path = tmp_path / "mutated.mid"
    path.write_bytes(_mutate(SMALL_REAL[which], mutations))
    _read(path)  # fails the test on any exception other than MidiError, or on a hang


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(_mutation, min_size=1, max_size=3))
def test_mutated_full_maestro_file_raises_only_midierror(tmp_path, mutations):
    path = tmp_path / "mutated.mid"
    path.write_bytes(_mutate(REAL_BYTES, mutations))
    _read(path)


# ---- the data module skips bad files, training goes on ------------------------------------------------
@pytest.mark.slow
def test_datamodule_skips_damaged_files_and_trains(tmp_path, capsys):
    import lightning as L

    from musicrnn.data.cache import build_or_load, damaged_report_path
    from musicrnn.data.datamodule import MaestroDataModule
    from musicrnn.model.cores import LSTMNet
    from musicrnn.model.lightning import MusicModel

    root = tmp_path / "midi"
    root.mkdir()
    for name, (data, _) in CASES.items():
        (root / f"{name}.mid").write_bytes(data)
    for p in REAL[:3]:
        (root / p.name).write_bytes(p.read_bytes())
    dm = MaestroDataModule(root=str(root), seq_length=8, batch_size=16, train_windows_per_epoch=64, val_windows=32,
                           cache_dir=str(tmp_path / "cache"), jobs=1)
    dm.prepare_data()
    err = capsys.readouterr().err
    assert "skipped" in err and "could not use" in err and "line-ending damage" in err
    cache = build_or_load(root, cache_folder=tmp_path / "cache", jobs=1, progress=False, verbose=False)
    report = json.loads(damaged_report_path(cache.path).read_text())
    assert {Path(r["file"]).stem for r in report} >= {n for n, (_, e) in CASES.items() if e == "error"}
    assert {Path(f.path).name for f in cache.files} >= {p.name for p in REAL[:3]}

    model = MusicModel(net=lambda d: LSTMNet(d, hidden_size=8), seq_length=8, composers=dm.composers)
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=1, default_root_dir=tmp_path)
    trainer.fit(model, dm)
    assert trainer.global_step == 3


# ---- checkpoints: refuse code, give one line for garbage ------------------------------------------------
class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _bad_checkpoints(tmp_path) -> dict[str, Path]:
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "musicrnn": {"net": {}}, "payload": _Evil()}, evil)
    good = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "musicrnn": {"net": {}}}, good)
    trunc = tmp_path / "truncated.ckpt"
    trunc.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    rand = tmp_path / "random.ckpt"
    rand.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    return {"evil": evil, "truncated": trunc, "random": rand, "empty": empty}


@pytest.mark.parametrize("kind", ["evil", "truncated", "random", "empty"])
def test_load_model_refuses_bad_checkpoints(tmp_path, kind):
    from musicrnn.model.checkpoint import load_network as load_model

    path = _bad_checkpoints(tmp_path)[kind]
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    assert "\n" not in str(e.value)
    if kind == "evil":
        assert "refused" in str(e.value)


def test_load_model_text_file_is_checkpointerror(tmp_path):
    from musicrnn.model.checkpoint import load_network as load_model

    path = tmp_path / "notes.ckpt"
    path.write_bytes(b"hello world" * 100)  # the weights-only unpickler raises KeyError on this
    with pytest.raises(CheckpointError):
        load_model(path)


@pytest.mark.parametrize("kind", ["evil", "truncated", "random", "empty"])
def test_fit_resume_refuses_bad_checkpoints(tmp_path, kind):
    from musicrnn.model.checkpoint import load_checkpoint_dict

    path = _bad_checkpoints(tmp_path)[kind]
    with pytest.raises(CheckpointError) as e:
        load_checkpoint_dict(str(path))
    assert "\n" not in str(e.value)
    assert ("refused" in str(e.value)) == (kind == "evil")
