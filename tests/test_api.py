"""The public API (``import musicrnn``): load, generate, extend, write, read, draw — on the pretrained model
and the bundled MAESTRO sample, with golden values; and the ``musicrnn`` command that dispatches to the CLIs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import musicrnn
from musicrnn.data.cache import SAMPLE_ROOT
from musicrnn.errors import CheckpointError, ConfigError, MidiError

REPO = Path(__file__).resolve().parents[1]
# Schubert's Fantasy in F minor (MAESTRO 2006), 3648 notes
BUNDLED = SAMPLE_ROOT / "2006" / "MIDI-Unprocessed_01_R1_2006_01-09_ORIG_MID--AUDIO_01_R1_2006_04_Track04_wav.midi"
FIELDS = ("pitch", "start", "end", "velocity")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in FIELDS)


@pytest.fixture(scope="module")
def model():
    return musicrnn.load("pretrained")


def test_import_is_cheap_and_names_the_api():
    code = ("import sys, musicrnn; print(sorted(m for m in ('torch', 'lightning', 'matplotlib', 'pretty_midi') "
            "if m in sys.modules)); print(musicrnn.__all__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True)
    heavy, names = out.stdout.splitlines()
    assert heavy == "[]"
    for name in ("load", "generate", "extend", "write_midi", "write_wav", "piano_roll", "read_midi", "Notes"):
        assert name in names and hasattr(musicrnn, name)


def test_generate_from_a_midi_file_continues_its_last_notes(model):
    piece = musicrnn.generate(model, BUNDLED, 8, seed=0)
    assert len(piece.prime) == model.seq_length == 128
    assert piece.prime.start[0] == 0.0
    assert piece.continuation.pitch.tolist() == [41, 48, 48, 36, 53, 57, 60, 58]  # golden
    assert piece.continuation.velocity.tolist() == [28, 37, 56, 58, 47, 54, 39, 52]
    assert len(piece.notes) == 128 + 8
    assert (piece.seed, piece.temperature, piece.top_p) == (0, 0.9, 0.95)  # the shipped defaults


def test_a_notes_prime_is_the_same_as_its_file(model):
    from_file = musicrnn.generate(model, BUNDLED, 8, seed=0)
    from_notes = musicrnn.generate(model, musicrnn.read_midi(BUNDLED), 8, seed=0)
    assert _same(from_file.prime, from_notes.prime) and _same(from_file.continuation, from_notes.continuation)


def test_no_prime_draws_a_seeded_window_of_the_bundled_sample(model):
    a = musicrnn.generate(model, None, 8, seed=0)
    b = musicrnn.generate(model, num_notes=8, seed=0)
    assert a.composer == "Felix Mendelssohn"  # the window's composer, which the model knows
    assert a.continuation.pitch.tolist() == [61, 68, 61, 73, 70, 68, 64, 58]  # golden
    assert _same(a.prime, b.prime) and _same(a.continuation, b.continuation)
    c = musicrnn.generate(model, num_notes=8)  # no seed: drawn, and recorded so it can be repeated
    assert _same(c.continuation, musicrnn.generate(model, c.prime, 8, seed=c.seed, composer=c.composer).continuation)


def test_extend_carries_the_state_and_equals_one_long_generation(model):
    short = musicrnn.generate(model, BUNDLED, 20, seed=5)
    longer = musicrnn.extend(short, 12)
    once = musicrnn.generate(model, BUNDLED, 32, seed=5)
    assert len(short.continuation) == 20 and len(longer.continuation) == 32
    assert _same(longer.continuation, once.continuation)  # not re-primed: the sampler went on
    assert _same(longer.prime, short.prime)
    with pytest.raises(ConfigError, match="extend the newest"):
        musicrnn.extend(short, 4)  # its sampler has moved on


def test_one_extension_of_a_piece_at_a_time(model):
    piece = musicrnn.generate(model, BUNDLED, 4, seed=5)
    # as while another thread extends it
    with piece._carried.busy, pytest.raises(ConfigError, match="being extended right now"):
        musicrnn.extend(piece, 4)
    assert len(musicrnn.extend(piece, 4).continuation) == 8


def test_progress_is_reported(model):
    seen = []
    musicrnn.generate(model, BUNDLED, 40, seed=0, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 40) and seen[-1] == (40, 40) and len(seen) == 4  # every 16 notes and the end


def test_write_and_read_midi_keep_every_note(model, tmp_path):
    piece = musicrnn.generate(model, BUNDLED, 30, seed=1)
    path = musicrnn.write_midi(piece, tmp_path / "out" / "piece.mid")
    back = musicrnn.read_midi(path)
    assert len(back) == 128 + 30
    assert sorted(back.pitch.tolist()) == sorted(piece.notes.pitch.tolist())  # (order: times are rounded to ticks)
    assert np.allclose(np.sort(back.start), np.sort(piece.notes.start), atol=1e-3)
    assert len(musicrnn.read_midi(musicrnn.write_midi(piece.continuation, tmp_path / "cont.mid"))) == 30


def test_piano_roll_file_and_image(model, tmp_path):
    piece = musicrnn.generate(model, BUNDLED, 10, seed=1)
    png = musicrnn.piano_roll(piece, tmp_path / "roll.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = musicrnn.piano_roll(piece)  # prime and continuation in two colours
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert musicrnn.piano_roll(piece.prime).shape[2] == 3


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="FluidSynth not installed")
def test_write_wav(model, tmp_path):
    piece = musicrnn.generate(model, BUNDLED, 10, seed=1)
    wav = musicrnn.write_wav(piece, tmp_path / "piece.wav")
    assert wav.read_bytes()[:4] == b"RIFF" and wav.stat().st_size > 44


def test_load_a_run_folder_and_bad_checkpoints(tmp_path):
    from musicrnn.model.checkpoint import PRETRAINED

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    shutil.copy(PRETRAINED, tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert musicrnn.load(tmp_path / "run").seq_length == 128
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        musicrnn.load(tmp_path / "missing.ckpt")
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        musicrnn.load(tmp_path / "bad.ckpt")


def test_bad_primes_and_settings(model, tmp_path):
    (tmp_path / "x.mid").write_bytes(b"hello")
    with pytest.raises(MidiError):
        musicrnn.generate(model, tmp_path / "x.mid", 4)
    with pytest.raises(ConfigError, match="num_notes"):
        musicrnn.generate(model, BUNDLED, 0)
    with pytest.raises(ConfigError, match="temperature"):
        musicrnn.generate(model, BUNDLED, 4, temperature=-1)


def test_generation_leaves_lightning_out(tmp_path):
    code = ("import sys, musicrnn; m = musicrnn.load(); p = musicrnn.generate(m, num_notes=4, seed=0); "
            "musicrnn.write_midi(p, sys.argv[1]); "
            "print(sorted(k for k in ('lightning', 'tensorboard', 'torchmetrics') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.mid")], capture_output=True, text=True,
                         env=_env(), check=True)
    assert out.stdout.strip() == "[]"


def test_the_musicrnn_command_dispatches_to_the_cli_mains(tmp_path):
    run = [sys.executable, "-m", "musicrnn"]
    listed = subprocess.run([*run, "--help"], capture_output=True, text=True, env=_env(), check=True).stdout
    for name in ("fit", "sample", "live", "evaluate", "experiments", "data", "studio"):
        assert f"  {name}" in listed
    out = tmp_path / "s.mid"
    r = subprocess.run([*run, "sample", "--num-notes", "5", "--seed", "0", "--out", str(out)], capture_output=True,
                       text=True, env=_env(), cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stderr
    assert len(musicrnn.read_midi(out)) == 5
    bad = subprocess.run([*run, "paint"], capture_output=True, text=True, env=_env(), check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown command 'paint'")
