"""A WAV that stops before the music is an error, not a success: FluidSynth exits 0 when its writes fail
(a nearly full disk gave a 0.2 s WAV of a 25 s piece), so ``render_wav`` and ``sample --wav`` compare the
rendered length with the MIDI's and say what happened, keeping earlier files byte-identical."""
from __future__ import annotations

import os
import re
import shutil

import pytest

from helpers import MAESTRO_FILE
from musicrnn import render
from musicrnn.cli.sample import main
from musicrnn.errors import MusicRNNError
from musicrnn.notes import Notes

needs_fluidsynth = pytest.mark.skipif(not render.fluidsynth_available(), reason="fluidsynth not installed")


def fill(folder, leave: int) -> None:
    free = shutil.disk_usage(folder).free
    with open(folder / "filler.bin", "wb") as f:
        f.write(b"\0" * max(free - leave, 0))


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def piece(tmp_path_factory):
    """About 24 s of a real MAESTRO performance (100 notes), starting at 0."""
    notes = Notes.from_midi(MAESTRO_FILE)[:100]
    path = tmp_path_factory.mktemp("piece") / "piece.mid"
    notes.shifted(-float(notes.start[0])).to_midi(path)
    return path


@needs_fluidsynth
def test_full_disk_wav_is_refused_and_earlier_wav_kept(piece, small_disk):
    wav = small_disk / "piece.wav"
    wav.write_bytes(b"an earlier render")
    fill(small_disk, 150 * 1024)  # room for ~1 s of 44.1 kHz stereo, not for 24 s
    before = snapshot(small_disk)
    with pytest.raises(MusicRNNError) as e:
        render.render_wav(piece, wav)
    msg = str(e.value)
    assert re.match(rf"FluidSynth wrote only [01]\.\d s of audio to {re.escape(str(wav))} for the 2\d\.\d s of "
                    rf"{re.escape(str(piece))} \(", msg), msg
    assert "No space left" in msg and "free some space or write elsewhere" in msg, msg
    assert snapshot(small_disk) == before  # no temp file left, the earlier WAV intact


@needs_fluidsynth
def test_sample_wav_on_full_disk_is_one_line_and_keeps_nothing(tiny_ckpt, small_disk, monkeypatch, capsys):
    monkeypatch.setenv("MUSICRNN_CACHE", str(tiny_ckpt.parent / "cache"))
    out = small_disk / "out.mid"
    fill(small_disk, 120 * 1024)
    before = snapshot(small_disk)
    with pytest.raises(SystemExit) as e:
        main(["--ckpt", str(tiny_ckpt), "--num-notes", "100", "--seed", "0", "--wav", "--out", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines()
           if not line.startswith(("prime:", "seed ", "musicrnn: parsed"))]
    assert e.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("error: FluidSynth wrote only ") and f"to {small_disk / 'out.wav'} for the" in err[0]
    assert ".tmp" not in err[0] and "no file of this run was kept" in err[0]
    assert snapshot(small_disk) == before


@needs_fluidsynth
def test_full_render_passes_the_length_check(piece, tmp_path):
    wav = render.render_wav(piece, tmp_path / "ok.wav", sample_rate=22050)
    assert os.path.getsize(wav) > 22050 * 4 * 24
