"""Look at and listen to ``Notes``: piano-roll pictures (PNG or an array for TensorBoard) and audio.

Pictures use matplotlib's Agg canvas directly (a ``Figure``, never ``pyplot``): no GUI backend,
no global figure state, safe in a training loop or a headless server.

Audio shells out to the ``fluidsynth`` command line (Debian: ``fluidsynth`` +
``fluid-soundfont-gm``) rather than a Python binding: one optional system tool, no extra Python
dependency, and when it is missing the user gets one line saying what to install.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from musicrnn.diskspace import free_bytes
from musicrnn.errors import MusicRNNError
from musicrnn.io_utils import atomic_write, file_mode
from musicrnn.memory import size_text
from musicrnn.midi.timing import note_end_seconds
from musicrnn.notes import PIANO_HIGH, PIANO_LOW, Notes

SOUNDFONT_ENV = "MUSICRNN_SOUNDFONT"
SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # Debian/Ubuntu fluid-soundfont-gm
    "/usr/share/sounds/sf2/default-GM.sf2",  # Debian alternatives link
    "/usr/share/soundfonts/default.sf2",  # Fedora/Arch
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)
MISSING_FLUIDSYNTH = ("FluidSynth not found — install it (apt-get install fluidsynth fluid-soundfont-gm) "
                      "or drop --wav")
RENDER_TIMEOUT_S = 600
WAV_HEADER_BYTES = 44  # a canonical PCM WAV header
LENGTH_TOLERANCE_S = 0.05  # the WAV may end this much before the MIDI's last note (tick rounding)
PART_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")  # prime, continuation, ...


# ---- piano roll --------------------------------------------------------------------------------
def piano_roll(notes: Notes, ax=None, title: str | None = None):
    """Draw ``notes`` on ``ax`` (a new Agg figure if None): time on x, pitch on y, velocity as colour.

    One ``PolyCollection`` for all notes, so a 5k-note performance draws in well under a second.
    Returns the Axes.
    """
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import Normalize

    if ax is None:
        ax = _new_figure().add_subplot(1, 1, 1)
    if len(notes):
        coll = PolyCollection(_note_boxes(notes), array=notes.velocity.astype(np.float64), cmap="viridis",
                              norm=Normalize(1, 127), linewidths=0)
        ax.add_collection(coll)
        ax.figure.colorbar(coll, ax=ax, label="velocity", pad=0.01)
    _style_axes(ax, notes, title)
    return ax


def piano_roll_parts(parts: list[tuple[Notes, str]], path: str | os.PathLike | None = None,
                     title: str | None = None, size: tuple[float, float] = (12, 5), dpi: int = 100):
    """Several note sets on one piano roll, one colour each with a legend (e.g. a prime and its
    continuation on one timeline). Writes a PNG atomically when ``path`` is given and returns it; else
    returns the (H, W, 3) uint8 RGB image."""
    from matplotlib.collections import PolyCollection

    ax = _new_figure(size, dpi).add_subplot(1, 1, 1)
    for (notes, label), colour in zip(parts, PART_COLOURS):
        if len(notes):
            ax.add_collection(PolyCollection(_note_boxes(notes), facecolors=colour, linewidths=0,
                                             label=f"{label} ({len(notes)} notes)"))
    every = [n for n, _ in parts if len(n)]
    joined = Notes.from_arrays(*(np.concatenate([getattr(n, k) for n in every]) if every else np.zeros(0)
                                 for k in ("pitch", "start", "end", "velocity")))
    _style_axes(ax, joined, title)
    if every:
        ax.legend(loc="upper left")
    if path is None:
        ax.figure.tight_layout()
        ax.figure.canvas.draw()
        return np.asarray(ax.figure.canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)
    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    with atomic_write(path) as f:
        f.write(buf.getvalue())
    return Path(path)


def _note_boxes(notes: Notes) -> np.ndarray:
    """One rectangle per note: (n, 4, 2) corners in (time, pitch)."""
    s, e = notes.start, notes.end
    p = notes.pitch.astype(np.float64)
    return np.stack([np.stack([s, p - 0.4], 1), np.stack([e, p - 0.4], 1),
                     np.stack([e, p + 0.4], 1), np.stack([s, p + 0.4], 1)], axis=1)  # (n, 4, 2)


def _style_axes(ax, notes: Notes, title: str | None) -> None:
    """Limits (at least the 88 keys), C-note ticks, labels and title for a piano roll of ``notes``."""
    n = len(notes)
    lo = min(PIANO_LOW, int(notes.pitch.min())) if n else PIANO_LOW
    hi = max(PIANO_HIGH, int(notes.pitch.max())) if n else PIANO_HIGH
    if not n:
        ax.text(0.5, 0.5, "no notes", transform=ax.transAxes, ha="center", va="center", color="gray")
    ax.set_xlim(min(0.0, float(notes.start.min())) if n else 0.0, max(notes.duration, 1e-3))
    ax.set_ylim(lo - 1, hi + 1)
    ax.set_yticks([c for c in range(0, 128, 12) if lo - 1 <= c <= hi + 1])  # C notes
    ax.set_yticklabels([f"C{c // 12 - 1}" for c in range(0, 128, 12) if lo - 1 <= c <= hi + 1])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("pitch")
    ax.grid(axis="y", alpha=0.25)
    ax.set_title(title if title is not None else f"{n} notes, {notes.duration:.1f} s")


def save_piano_roll(notes: Notes, path: str | os.PathLike, title: str | None = None,
                    size: tuple[float, float] = (12, 5), dpi: int = 100) -> Path:
    """Write a PNG piano roll atomically (a crash never leaves a half-written image)."""
    ax = piano_roll(notes, ax=_new_figure(size, dpi).add_subplot(1, 1, 1), title=title)
    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    with atomic_write(path) as f:
        f.write(buf.getvalue())
    return Path(path)


def save_piano_rolls(notes_list: list[Notes], path: str | os.PathLike, titles: list[str],
                     size: tuple[float, float] = (12, 3.5), dpi: int = 100) -> Path:
    """Several piano rolls stacked in one PNG (e.g. generated above real), written atomically."""
    fig = _new_figure((size[0], size[1] * len(notes_list)), dpi)
    for k, (notes, title) in enumerate(zip(notes_list, titles)):
        piano_roll(notes, ax=fig.add_subplot(len(notes_list), 1, k + 1), title=title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    with atomic_write(path) as f:
        f.write(buf.getvalue())
    return Path(path)


def piano_roll_image(notes: Notes, title: str | None = None, size: tuple[float, float] = (8, 4),
                     dpi: int = 80) -> np.ndarray:
    """(H, W, 3) uint8 RGB piano roll, for ``SummaryWriter.add_image(tag, img, step, dataformats="HWC")``."""
    fig = _new_figure(size, dpi)
    piano_roll(notes, ax=fig.add_subplot(1, 1, 1), title=title)
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)


def _new_figure(size: tuple[float, float] = (12, 5), dpi: int = 100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


# ---- audio -------------------------------------------------------------------------------------
def fluidsynth_available() -> bool:
    """True when the ``fluidsynth`` program is on PATH (a SoundFont is checked separately)."""
    return shutil.which("fluidsynth") is not None


def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path:
    """The SoundFont to use: the argument, else $MUSICRNN_SOUNDFONT, else the usual system paths."""
    if soundfont is not None:
        if not Path(soundfont).is_file():
            raise MusicRNNError(f"SoundFont {soundfont} not found — pass an existing .sf2 file")
        return Path(soundfont)
    env = os.environ.get(SOUNDFONT_ENV)
    if env:
        if not Path(env).is_file():
            raise MusicRNNError(f"${SOUNDFONT_ENV}={env} is not a file — point it at an .sf2 or unset it")
        return Path(env)
    for p in SOUNDFONT_PATHS:
        if Path(p).is_file():
            return Path(p)
    raise MusicRNNError("no SoundFont found — install one (apt-get install fluid-soundfont-gm) "
                        f"or set ${SOUNDFONT_ENV} to an .sf2 file")


def render_wav(midi_path: str | os.PathLike, wav_path: str | os.PathLike,
               soundfont: str | os.PathLike | None = None, sample_rate: int = 44100,
               gain: float = 1.0) -> Path:
    """Render a MIDI file to a 16-bit stereo WAV with FluidSynth, atomically; returns ``wav_path``.

    The WAV is a little longer than the music: FluidSynth renders the release/reverb tail.
    """
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise MusicRNNError(MISSING_FLUIDSYNTH)
    midi_path, wav_path = Path(midi_path), Path(wav_path)
    if not midi_path.is_file():
        raise MusicRNNError(f"{midi_path} not found — pass an existing MIDI file")
    sf2 = find_soundfont(soundfont)
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{wav_path.name}.", suffix=".wav", dir=wav_path.parent)
    os.close(fd)
    # -n no MIDI input, -i no shell, -q quiet, -T/-O force 16-bit WAV whatever the extension
    cmd = [exe, "-n", "-i", "-q", "-g", str(gain), "-T", "wav", "-O", "s16", "-F", tmp,
           "-r", str(int(sample_rate)), str(sf2), str(midi_path)]
    try:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise MusicRNNError(f"FluidSynth took over {RENDER_TIMEOUT_S} s on {midi_path} — "
                                f"render a shorter piece") from None
        if r.returncode != 0 or os.path.getsize(tmp) <= WAV_HEADER_BYTES:  # a header only
            msg = (r.stderr or r.stdout).strip().splitlines()
            raise MusicRNNError(f"FluidSynth could not render {midi_path} to {wav_path} "
                                f"({msg[-1] if msg else f'exit {r.returncode}'}) — check the MIDI file "
                                f"and SoundFont {sf2}")
        _check_length(midi_path, wav_path, tmp, r.stderr)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, wav_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return wav_path


def _check_length(midi_path: Path, wav_path: Path, tmp: str, log: str) -> None:
    """MusicRNNError when the WAV stops before the music does: FluidSynth exits 0 after a failed write
    (a full disk gave a 0.2 s WAV of a 25 s piece), so the frames the file holds are compared with the
    MIDI's last note (``LENGTH_TOLERANCE_S`` for tick rounding)."""
    try:
        with wave.open(tmp, "rb") as w:
            frame_bytes, rate, claimed = w.getnchannels() * w.getsampwidth(), w.getframerate(), w.getnframes()
        data_bytes = os.path.getsize(tmp) - WAV_HEADER_BYTES
        seconds = min(claimed, max(data_bytes, 0) // max(frame_bytes, 1)) / rate
    except (wave.Error, EOFError, OSError):
        seconds = 0.0
    music = note_end_seconds(midi_path.read_bytes())
    if seconds < music - LENGTH_TOLERANCE_S:
        why = next((line.strip() for line in log.splitlines() if "error" in line.lower()), "")
        os.unlink(tmp)  # so the free space said is what the user has
        free = free_bytes(wav_path.parent)
        room = f"{size_text(free)} free there" if free is not None else "its folder"
        raise MusicRNNError(f"FluidSynth wrote only {seconds:.1f} s of audio to {wav_path} for the {music:.1f} s "
                            f"of {midi_path}{f' ({why})' if why else ''} — the disk may be full ({room}): free "
                            f"some space or write elsewhere")


def read_wav_mono(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a PCM WAV (8/16/32-bit) with the stdlib ``wave`` module -> (float32 mono in [-1, 1], rate)."""
    with wave.open(str(path), "rb") as w:
        ch, width, sr, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        dt = np.int16 if width == 2 else np.int32
        x = np.frombuffer(raw, dt).astype(np.float32) / float(np.iinfo(dt).max)
    else:
        raise MusicRNNError(f"{path}: {8 * width}-bit WAV is not supported — render 16-bit PCM")
    return x.reshape(-1, ch).mean(axis=1).astype(np.float32), sr  # (frames,)


def render_wav_array(notes: Notes, soundfont: str | os.PathLike | None = None,
                     sample_rate: int = 22050) -> tuple[np.ndarray, int]:
    """Render ``notes`` to (float32 mono samples (n,), sample_rate) for ``add_audio``.

    22.05 kHz by default: a piano preview does not need more, and it halves TensorBoard event size.
    """
    if not fluidsynth_available():
        raise MusicRNNError(MISSING_FLUIDSYNTH)
    with tempfile.TemporaryDirectory(prefix="musicrnn-render-") as d:
        midi = notes.to_midi(Path(d) / "notes.mid")
        wav = render_wav(midi, Path(d) / "notes.wav", soundfont=soundfont, sample_rate=sample_rate)
        return read_wav_mono(wav)
