"""render.py: piano-roll PNG/array and FluidSynth audio (audio tests skip cleanly without fluidsynth)."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import wave

import numpy as np
import pytest

from musicrnn import render
from musicrnn.errors import MusicRNNError
from musicrnn.notes import Notes

needs_fluidsynth = pytest.mark.skipif(
    not render.fluidsynth_available() or not any(os.path.isfile(p) for p in render.SOUNDFONT_PATHS),
    reason="fluidsynth or a GM SoundFont not installed (apt-get install fluidsynth fluid-soundfont-gm)",
)


@pytest.fixture
def notes() -> Notes:
    rng = np.random.default_rng(0)
    n = 40
    start = np.sort(rng.uniform(0, 3.0, n))
    return Notes.from_arrays(rng.integers(48, 84, n), start, start + rng.uniform(0.1, 0.5, n),
                             rng.integers(30, 120, n))


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_save_piano_roll_writes_valid_png(notes, tmp_path):
    out = render.save_piano_roll(notes, tmp_path / "sub" / "roll.png", title="test")
    data = out.read_bytes()
    w, h = _png_size(data)
    assert 600 <= w <= 1400 and 250 <= h <= 700  # 12x5 in at 100 dpi, trimmed by bbox_inches="tight"
    assert data.endswith(b"IEND\xaeB`\x82")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["roll.png"]  # no temp file left


def test_piano_roll_image_shape_and_content(notes):
    img = render.piano_roll_image(notes)
    assert img.dtype == np.uint8 and img.shape == (320, 640, 3)  # (H, W, 3) = 4x8 in at 80 dpi
    assert img.std() > 10  # something was drawn
    empty = render.piano_roll_image(Notes.empty())
    assert empty.shape == img.shape
    assert not np.array_equal(empty, img)


def test_piano_roll_on_given_axes(notes):
    fig = render._new_figure()
    ax = render.piano_roll(notes, ax=fig.add_subplot(1, 1, 1), title="t")
    assert ax.get_title() == "t"
    assert ax.get_xlim()[1] == pytest.approx(notes.duration)
    assert len(ax.collections[0].get_paths()) == len(notes)


def test_rendering_never_loads_pyplot_or_a_gui_backend():
    code = ("import sys; from musicrnn import render; from musicrnn.notes import Notes; "
            "render.piano_roll_image(Notes.from_arrays([60], [0.0], [1.0])); "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MPLBACKEND": "TkAgg"})  # even with a GUI backend asked for
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@needs_fluidsynth
def test_render_wav_has_sound_of_right_length(notes, tmp_path):
    midi = notes.to_midi(tmp_path / "n.mid")
    wav = render.render_wav(midi, tmp_path / "out" / "n.wav", sample_rate=22050)
    with wave.open(str(wav)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 22050)
        seconds = w.getnframes() / w.getframerate()
    assert notes.duration <= seconds <= notes.duration + 5.0  # + release/reverb tail
    x, sr = render.read_wav_mono(wav)
    assert sr == 22050 and x.dtype == np.float32 and x.ndim == 1
    rms = float(np.sqrt(np.mean(x[: int(notes.duration * sr)] ** 2)))
    assert rms > 0.005, rms  # not silent
    assert np.abs(x).max() <= 1.0
    assert sorted(p.name for p in wav.parent.iterdir()) == ["n.wav"]


@needs_fluidsynth
def test_render_wav_array(notes):
    x, sr = render.render_wav_array(notes)
    assert sr == 22050 and x.dtype == np.float32 and x.ndim == 1
    assert notes.duration * sr <= len(x) <= (notes.duration + 5.0) * sr
    assert float(np.abs(x).max()) > 0.05


def test_missing_fluidsynth_is_one_clear_error(notes, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without fluidsynth
    assert not render.fluidsynth_available()
    midi = notes.to_midi(tmp_path / "n.mid")
    for call in (lambda: render.render_wav(midi, tmp_path / "n.wav"), lambda: render.render_wav_array(notes)):
        with pytest.raises(MusicRNNError, match="FluidSynth not found — install it .*or drop --wav"):
            call()
    assert not (tmp_path / "n.wav").exists()


def test_missing_soundfont_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv(render.SOUNDFONT_ENV, str(tmp_path / "nope.sf2"))
    with pytest.raises(MusicRNNError, match="MUSICRNN_SOUNDFONT"):
        render.find_soundfont()
    with pytest.raises(MusicRNNError, match="nope2.sf2 not found"):
        render.find_soundfont(tmp_path / "nope2.sf2")
