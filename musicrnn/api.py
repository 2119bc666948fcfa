"""The public Python API: load a model, generate from a prime, continue, write MIDI/WAV, draw, read MIDI.

    import musicrnn
    model = musicrnn.load("pretrained")
    piece = musicrnn.generate(model, "my.mid", num_notes=200)
    piece = musicrnn.extend(piece, 100)
    musicrnn.write_midi(piece, "out.mid")

Everything here is a thin layer over the modules that do the work: checkpoints are read by
``model.checkpoint``, notes come from the one sampling loop (``sampling.generator``), primes from
``sampling.primes``, files and pictures from ``Notes`` and ``render``. The studio calls these same
functions.

Why the heavy imports sit inside the functions: ``import musicrnn`` runs for every ``python -m
musicrnn.X`` and must stay cheap, so this module imports only ``Notes`` and ``render`` (numpy) at the
top; torch comes with the first ``load``, matplotlib with the first piano roll. Nothing here imports Lightning
(import-linter checks it).
"""
from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from musicrnn import render
from musicrnn.errors import ConfigError
from musicrnn.notes import Notes
from musicrnn.sampling.defaults import DEFAULT_TEMPERATURE, DEFAULT_TIMING_TEMPERATURE, DEFAULT_TOP_P

# the shipped sampling defaults: the best measured settings of the pretrained model (README)
PROGRESS_EVERY = 16  # notes between two progress calls
Progress = Callable[[int, int], None]  # (notes done, notes asked for)


@dataclass
class _Carried:
    """The running sampler of a piece and how many notes it has produced (its state is carried on)."""

    generator: object  # sampling.generator.Generator
    notes_done: int
    busy: threading.Lock = field(default_factory=threading.Lock)  # one extension at a time


@dataclass
class Piece:
    """A generated piece: the prime, its continuation, and how to repeat it.

    ``continuation`` times count from the prime's last onset (t = 0), as the sampler gives them;
    ``notes`` puts prime and continuation on one timeline. ``seed`` repeats the whole piece (the prime
    window too when it was drawn from the bundled sample).
    """

    prime: Notes
    continuation: Notes
    seed: int
    temperature: float
    top_p: float | None
    composer: str | None
    _carried: _Carried = field(repr=False)

    @property
    def notes(self) -> Notes:
        """Prime followed by the continuation, on one timeline."""
        from musicrnn.sampling.generator import place_after

        return place_after(self.prime, self.continuation)

    @property
    def model(self):
        """The network that played it (``MusicNet``)."""
        return self._carried.generator.net


def load(checkpoint: str | os.PathLike = "pretrained", device: str = "cpu"):
    """A trained network ready to sample: ``"pretrained"`` (the model that ships with musicrnn), a
    ``.ckpt`` written by ``python -m musicrnn.fit`` (also looked up in ``checkpoints/``), or a run folder
    (its ``last.ckpt`` or ``checkpoints/last.ckpt``). Bad input raises ``musicrnn.errors.CheckpointError``."""
    from musicrnn.model.checkpoint import find_checkpoint, load_network
    from musicrnn.sampling.generator import resolve_device

    path = find_checkpoint(checkpoint)
    if path.is_dir():  # a run folder: its newest state
        path = next((c for c in (path / "last.ckpt", path / "checkpoints" / "last.ckpt") if c.is_file()), path)
    return load_network(path, map_location=resolve_device(device))


def read_midi(path: str | os.PathLike) -> Notes:
    """Every note of a MIDI file (all non-drum tracks merged); a damaged file raises ``MidiError``."""
    return Notes.from_midi(path)


def generate(model, prime: str | os.PathLike | Notes | None = None, num_notes: int = 200, *,
             temperature: float = DEFAULT_TEMPERATURE, top_p: float | None = DEFAULT_TOP_P,
             top_k: int | None = None, seed: int | None = None, composer: str | None = None,
             prime_at: str = "end", progress: Progress | None = None,
             timing_temperature: float | None = DEFAULT_TIMING_TEMPERATURE) -> Piece:
    """Continue ``prime`` by ``num_notes`` notes.

    prime: a MIDI file (its last ``model.seq_length`` notes, or its first with ``prime_at="start"``),
    ``Notes`` (its last ``seq_length`` notes are used), or None: a seeded window of the bundled MAESTRO
    sample (whose composer is used when the model knows it and ``composer`` is None).
    seed: None draws one; ``piece.seed`` repeats the piece. progress: called as ``(done, num_notes)``.
    timing_temperature: of step, duration and velocity (None: ``temperature``).
    """
    from musicrnn.sampling.generator import Generator
    from musicrnn.sampling.primes import from_zero, pick_window, prime_from_midi

    if num_notes < 1:
        raise ConfigError(f"num_notes must be >= 1, got {num_notes}")
    seed = int.from_bytes(os.urandom(4), "little") if seed is None else int(seed)
    if prime is None:
        from musicrnn.data.cache import SAMPLE_ROOT, build_or_load

        # the sample's note cache built in this process: a parallel build spawns workers that re-run
        # the caller's script, which hangs a script without an ``if __name__ == "__main__"`` guard
        build_or_load(SAMPLE_ROOT, jobs=1, progress=False)
        window = pick_window(SAMPLE_ROOT, "validation", seed, model.seq_length)
        prime_notes = window.notes
        if composer is None and window.composer in model.composers:
            composer = window.composer
    elif isinstance(prime, Notes):
        prime_notes = from_zero(prime[-model.seq_length:])
    else:
        prime_notes = prime_from_midi(prime, model.seq_length, at=prime_at)
    device = next(model.parameters()).device
    generator = Generator(model, temperature, top_k, top_p, seed, device, composer,
                          timing_temperature=timing_temperature)
    generator.start(prime_notes, 1)
    carried = _Carried(generator, 0)
    piece = Piece(prime_notes, Notes.empty(), seed, temperature, top_p, composer, carried)
    return _more(piece, num_notes, progress)


def extend(piece: Piece, num_notes: int, progress: Progress | None = None) -> Piece:
    """``num_notes`` more notes after ``piece``, from the sampler's carried state (not re-primed): the
    result equals one generation of both lengths with the same seed. Extend the newest piece only."""
    if num_notes < 1:
        raise ConfigError(f"num_notes must be >= 1, got {num_notes}")
    carried = piece._carried
    if not carried.busy.acquire(blocking=False):
        raise ConfigError("this piece is being extended right now — wait for that result and extend it")
    try:
        if carried.notes_done != len(piece.continuation):
            raise ConfigError("this piece has been extended already — extend the newest result")
        return _more(piece, num_notes, progress)
    finally:
        carried.busy.release()


def _more(piece: Piece, num_notes: int, progress: Progress | None) -> Piece:
    """Step the piece's sampler ``num_notes`` times; a new Piece holding all notes so far."""
    import numpy as np
    import torch

    from musicrnn.sampling.notebuffer import collect_notes

    carried = piece._carried
    with torch.inference_mode():  # as generate_with: once for the whole loop
        new = collect_notes(carried.generator, _counting(num_notes, progress), num_notes)[0]
    carried.notes_done += num_notes
    old = piece.continuation
    continuation = Notes.from_arrays(*(np.concatenate([getattr(old, k), getattr(new, k)])
                                       for k in ("pitch", "start", "end", "velocity")))
    return Piece(piece.prime, continuation, piece.seed, piece.temperature, piece.top_p, piece.composer, carried)


def _counting(num_notes: int, progress: Progress | None):
    """range(num_notes), calling ``progress(done, num_notes)`` every ``PROGRESS_EVERY`` notes and at the end."""
    for i in range(num_notes):
        if progress is not None and i % PROGRESS_EVERY == 0:
            progress(i, num_notes)
        yield i
    if progress is not None:
        progress(num_notes, num_notes)


def _notes_of(music: Piece | Notes) -> Notes:
    return music.notes if isinstance(music, Piece) else music


def write_midi(music: Piece | Notes, path: str | os.PathLike) -> Path:
    """Write a piece (prime then continuation) or notes as a standard MIDI file, atomically."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return _notes_of(music).to_midi(path)


def write_wav(music: Piece | Notes, path: str | os.PathLike, soundfont: str | os.PathLike | None = None) -> Path:
    """Render a piece or notes to a WAV with FluidSynth (``apt-get install fluidsynth fluid-soundfont-gm``);
    without it, one ``MusicRNNError`` line says what to install."""
    if not render.fluidsynth_available():
        raise ConfigError(render.MISSING_FLUIDSYNTH.replace("or drop --wav", "or write MIDI only"))
    with tempfile.TemporaryDirectory(prefix="musicrnn-wav-") as tmp:
        midi = _notes_of(music).to_midi(Path(tmp) / "music.mid")
        return render.render_wav(midi, path, soundfont=soundfont)


def piano_roll(music: Piece | Notes, path: str | os.PathLike | None = None, title: str | None = None):
    """A piano roll: a piece shows its prime and continuation in two colours; notes are coloured by
    velocity. Writes a PNG when ``path`` is given (and returns the path), else returns an RGB array."""
    if isinstance(music, Piece):
        cont = music.continuation.shifted(float(music.prime.start[-1])) if len(music.prime) else music.continuation
        return render.piano_roll_parts([(music.prime, "prime"), (cont, "continuation")], path, title)
    if path is None:
        return render.piano_roll_image(music, title)
    return render.save_piano_roll(music, path, title)


def fluidsynth_available() -> bool:
    """True when WAV files can be written (the ``fluidsynth`` program is installed)."""
    return render.fluidsynth_available()
