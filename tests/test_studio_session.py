"""What the studio does behind its page (no browser, no Gradio): primes from uploads and pieces with a
message for every bad file, generate and continue with their files, limits, the pieces and checkpoints."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import musicrnn
from musicrnn.data.cache import SAMPLE_ROOT
from musicrnn.studio import session
from musicrnn.studio.pieces import checkpoint_choices, list_pieces
from musicrnn.studio.structure import SHOWN, structure_rows

BUNDLED = SAMPLE_ROOT / "2006" / "MIDI-Unprocessed_01_R1_2006_01-09_ORIG_MID--AUDIO_01_R1_2006_04_Track04_wav.midi"


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    return session.Studio(tmp_path_factory.mktemp("studio-out"))


def test_the_bundled_pieces_are_listed_by_composer_and_title():
    pieces = list_pieces(SAMPLE_ROOT)
    assert len(pieces) == 10
    assert pieces[0].label == "Alban Berg — Sonata Op. 1"
    assert all(p.path.is_file() for p in pieces)
    assert [p.label for p in pieces] == sorted(p.label for p in pieces)


def test_checkpoint_choices(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.ckpt").write_bytes(b"")
    assert checkpoint_choices(tmp_path) == ["pretrained", str(tmp_path / "run" / "last.ckpt")]
    assert checkpoint_choices(tmp_path / "none", "my.ckpt") == ["pretrained", "my.ckpt"]


def test_a_midi_file_gives_the_models_prime(studio):
    end = studio.read_prime(str(BUNDLED), "pretrained", "end")
    start = studio.read_prime(str(BUNDLED), "pretrained", "start")
    notes = musicrnn.read_midi(BUNDLED)
    assert len(end) == len(start) == 128 and end.start[0] == start.start[0] == 0.0
    assert end.pitch.tolist() == notes.pitch[-128:].tolist() and start.pitch.tolist() == notes.pitch[:128].tolist()
    assert studio.prime_roll(end, "prime").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("content", "message"), [
    (b"", "up.mid is empty"),
    (b"this is not a MIDI file at all", "up.mid is not a MIDI file this can read"),
    (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", "up.mid has no notes"),
    (b"MThd" + b"\x00" * 4_000_000, "up.mid is 4.0 MB; the studio takes MIDI files up to 4 MB"),
])
def test_a_bad_upload_is_one_message(studio, tmp_path, content, message):
    path = tmp_path / "upload-1234.mid"
    path.write_bytes(content)
    with pytest.raises(session.StudioError) as e:
        studio.read_prime(str(path), "pretrained", "end", name="up.mid")
    assert str(e.value).startswith(message)
    assert str(tmp_path) not in str(e.value)  # the server's temp path is not shown


def test_a_short_file_asks_for_a_longer_one(studio, tmp_path):
    short = musicrnn.write_midi(musicrnn.read_midi(BUNDLED)[:20], tmp_path / "short.mid")
    with pytest.raises(session.StudioError, match="short.mid has 20 notes but this model starts from 128"):
        studio.read_prime(str(short), "pretrained")
    with pytest.raises(session.StudioError, match="no file"):
        studio.read_prime(None, "pretrained")


def test_generate_and_continue_write_their_files(studio):
    prime = studio.read_prime(str(BUNDLED), "pretrained")
    take = studio.generate(prime, session.Settings(num_notes=24, seed=3))
    assert take.piece.seed == 3 and len(take.piece.continuation) == 24
    assert len(musicrnn.read_midi(take.midi)) == 128 + 24
    assert len(musicrnn.read_midi(take.continuation_midi)) == 24
    assert take.roll.read_bytes()[:4] == b"\x89PNG"
    if shutil.which("fluidsynth"):
        assert take.wav.read_bytes()[:4] == b"RIFF" and str(take.wav) in take.files
    else:
        assert take.wav is None and len(take.files) == 2
    assert [row[0] for row in take.rows] == [label for _, label, _ in SHOWN]
    more = studio.extend(take, 10)
    assert len(musicrnn.read_midi(more.continuation_midi)) == 34
    once = studio.generate(prime, session.Settings(num_notes=34, seed=3))
    assert np.array_equal(more.piece.continuation.pitch, once.piece.continuation.pitch)  # carried state
    assert more.folder != take.folder and take.midi.is_file()  # each result keeps its own files


def test_no_prime_and_random_seeds(studio):
    a = studio.generate(None, session.Settings(num_notes=4))
    b = studio.generate(None, session.Settings(num_notes=4, seed=a.piece.seed))
    assert np.array_equal(a.piece.continuation.pitch, b.piece.continuation.pitch)
    assert np.array_equal(a.piece.prime.pitch, b.piece.prime.pitch)


def test_limits_per_request(studio):
    prime = studio.read_prime(str(BUNDLED), "pretrained")
    with pytest.raises(session.StudioError, match="1..2000 per request"):
        studio.generate(prime, session.Settings(num_notes=session.MAX_NOTES_PER_REQUEST + 1))
    with pytest.raises(session.StudioError, match="1..2000 per request"):
        studio.generate(prime, session.Settings(num_notes=0))
    with pytest.raises(musicrnn.errors.MusicRNNError, match="composer"):
        studio.generate(prime, session.Settings(num_notes=4, composer="Nobody at all"))


def test_structure_rows_beside_the_pianists_range():
    real = musicrnn.read_midi(BUNDLED)[:200]
    rows = structure_rows(real)
    assert len(rows) == len(SHOWN) and all(len(r) == 3 for r in rows)
    density = {r[0]: r for r in rows}["notes per second"]
    lo, hi = (float(x) for x in density[2].split(" – "))
    assert 0 < lo < hi  # a range of real excerpts of the same length


def _studio_cli(*args: str):
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "musicrnn", "studio", *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def test_the_studio_command_refuses_bad_options_in_one_line():
    r = _studio_cli("--port", "70000")
    assert r.returncode == 2 and r.stderr.strip() == "error: --port must be 1..65535, got 70000"
    r = _studio_cli("--concurrency", "0")
    assert r.returncode == 2 and r.stderr.strip() == "error: --concurrency must be 1..16, got 0"


@pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="the studio extra is not installed")
def test_the_studio_command_refuses_a_missing_checkpoint_before_serving(tmp_path):
    r = _studio_cli("--ckpt", str(tmp_path / "nope.ckpt"))
    assert r.returncode == 2 and r.stderr.startswith(f"error: {tmp_path / 'nope.ckpt'}: no such checkpoint")


def test_old_results_are_removed_and_close_removes_the_rest(tmp_path):
    studio = session.Studio(tmp_path / "out")
    prime = musicrnn.read_midi(BUNDLED)[:16]
    first = studio.prime_roll(prime, "first").parent
    old = time.time() - session.KEEP_S - 60
    os.utime(first, (old, old))
    second = studio.prime_roll(prime, "second").parent
    assert not first.exists() and second.is_dir()
    studio.close()
    assert not (tmp_path / "out").exists()
