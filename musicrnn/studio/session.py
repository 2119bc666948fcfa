"""What the studio page does, without the page: read a prime, generate, continue, write the files.

Everything musical goes through the public API (``musicrnn.api``); this module adds what a shared
server needs: checks on uploads (a bad file is a message, never a traceback), a maximum length per
request, models loaded once and shared by all requests, and one output folder per result.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from musicrnn import api
from musicrnn.errors import MusicRNNError
from musicrnn.notes import Notes
from musicrnn.studio.pieces import PRETRAINED
from musicrnn.studio.structure import structure_rows

MAX_UPLOAD_BYTES = 4_000_000  # the largest MAESTRO file is ~1 MB
MAX_NOTES_PER_REQUEST = 2000  # ~4 s on one CPU thread with the pretrained model
MAX_PIECE_NOTES = 10_000  # "Continue" stops here
KEEP_S = 3600  # a result's own files are removed after an hour (the page has its copies)
INSTALL_AUDIO = ("No audio: FluidSynth is not installed — `apt-get install fluidsynth fluid-soundfont-gm` "
                 "(or your system's FluidSynth and a General MIDI SoundFont), then restart the studio. "
                 "The MIDI download works without it.")


class StudioError(MusicRNNError):
    """A problem with what the person asked for; shown on the page as one line."""


@dataclass
class Settings:
    """One request's settings, as the page sends them."""

    num_notes: int = 200
    temperature: float = api.DEFAULT_TEMPERATURE
    top_p: float = api.DEFAULT_TOP_P
    composer: str | None = None  # None: the prime's composer when the model knows it, else unknown
    seed: int | None = None  # None: random (the result says which)
    checkpoint: str = PRETRAINED


@dataclass
class Take:
    """One result: the piece (with its carried sampler) and its files."""

    piece: api.Piece
    checkpoint: str
    folder: Path
    roll: Path
    midi: Path  # prime + continuation
    continuation_midi: Path
    wav: Path | None  # None without FluidSynth
    rows: list[list]  # structure numbers (see structure.structure_rows)

    @property
    def files(self) -> list[str]:
        return [str(p) for p in (self.midi, self.continuation_midi, self.wav) if p is not None]


class Studio:
    """Shared by every request of one server: the loaded models and the output folder."""

    def __init__(self, output_root: str | Path | None = None, device: str = "cpu"):
        self.device = device
        self._root = Path(output_root) if output_root else Path(tempfile.mkdtemp(prefix="musicrnn-studio-"))
        self._models: dict[str, object] = {}
        self._lock = threading.Lock()  # one load per checkpoint, even when two requests ask at once

    @property
    def output_root(self) -> Path:
        return self._root

    def model(self, checkpoint: str):
        """The network of ``checkpoint`` (``pretrained`` or a path), loaded once."""
        with self._lock:
            if checkpoint not in self._models:
                self._models[checkpoint] = api.load(checkpoint, self.device)
            return self._models[checkpoint]

    def composers(self, checkpoint: str) -> list[str]:
        return list(self.model(checkpoint).composers)

    # ---- primes ----------------------------------------------------------------------------------
    def read_prime(self, path: str | os.PathLike | None, checkpoint: str, at: str = "end",
                   name: str | None = None) -> Notes:
        """The prime from an uploaded or chosen MIDI file: ``seq_length`` notes of it (its end or start).

        Raises StudioError with a message for the page: no file, empty, too large, not MIDI, no notes,
        too few notes.
        """
        if not path:
            raise StudioError("no file — upload a MIDI file (.mid or .midi)")
        name = name or Path(path).name
        size = Path(path).stat().st_size
        if size == 0:
            raise StudioError(f"{name} is empty — upload a MIDI file with notes")
        if size > MAX_UPLOAD_BYTES:
            raise StudioError(f"{name} is {size / 1e6:.1f} MB; the studio takes MIDI files up to "
                              f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB — upload a shorter piece")
        try:
            notes = api.read_midi(path)
        except MusicRNNError as e:
            raise StudioError(f"{name} is not a MIDI file this can read ({_reason(e, path)}) — upload a "
                              f"standard MIDI file (.mid)") from None
        need = self.model(checkpoint).seq_length
        if len(notes) == 0:
            raise StudioError(f"{name} has no notes (drum tracks are ignored) — upload a piano piece")
        if len(notes) < need:
            raise StudioError(f"{name} has {len(notes)} notes but this model starts from {need} — upload a "
                              f"longer piece, or pick one from the list")
        part = notes[-need:] if at == "end" else notes[:need]
        return part.shifted(-float(part.start[0]))

    def prime_roll(self, prime: Notes, title: str) -> Path:
        folder = self._new_folder()
        return api.piano_roll(prime, folder / "prime.png", title=title)

    # ---- generation ------------------------------------------------------------------------------
    def generate(self, prime: Notes | None, settings: Settings, progress=None) -> Take:
        """A new piece from ``prime`` (None: a seeded window of the bundled sample)."""
        _check_length(settings.num_notes, MAX_NOTES_PER_REQUEST)
        model = self.model(settings.checkpoint)
        piece = api.generate(model, prime, settings.num_notes, temperature=settings.temperature,
                             top_p=settings.top_p if settings.top_p < 1 else None, seed=settings.seed,
                             composer=settings.composer, progress=progress)
        return self._write(piece, settings.checkpoint)

    def extend(self, take: Take, num_notes: int, progress=None) -> Take:
        """The last result, ``num_notes`` longer: the sampler goes on from its carried state."""
        _check_length(num_notes, MAX_NOTES_PER_REQUEST)
        have = len(take.piece.continuation)
        if have + num_notes > MAX_PIECE_NOTES:
            raise StudioError(f"the piece has {have} notes; the studio stops at {MAX_PIECE_NOTES} — generate "
                              f"a new one")
        return self._write(api.extend(take.piece, num_notes, progress=progress), take.checkpoint)

    def _write(self, piece: api.Piece, checkpoint: str) -> Take:
        folder = self._new_folder()
        n = len(piece.continuation)
        title = f"{len(piece.prime)} prime notes + {n} generated, seed {piece.seed}"
        roll = api.piano_roll(piece, folder / "piece.png", title=title)
        midi = api.write_midi(piece, folder / f"musicrnn-{piece.seed}.mid")
        cont = api.write_midi(piece.continuation, folder / f"musicrnn-{piece.seed}-continuation.mid")
        wav = api.write_wav(piece, folder / f"musicrnn-{piece.seed}.wav") if api.fluidsynth_available() else None
        return Take(piece, checkpoint, folder, roll, midi, cont, wav, structure_rows(piece.continuation))

    def _new_folder(self) -> Path:
        """A fresh folder for one result; folders older than ``KEEP_S`` go (Gradio serves its own copies)."""
        now = time.time()
        for old in self._root.glob("*"):
            with contextlib.suppress(OSError):
                if now - old.stat().st_mtime > KEEP_S:
                    shutil.rmtree(old)
        folder = self._root / uuid.uuid4().hex[:12]
        folder.mkdir(parents=True)
        return folder

    def close(self) -> None:
        """Remove every file this studio wrote."""
        shutil.rmtree(self._root, ignore_errors=True)


def _check_length(num_notes: int, most: int) -> None:
    if not 1 <= int(num_notes) <= most:
        raise StudioError(f"number of notes must be 1..{most} per request, got {num_notes}")


def _reason(e: Exception, path) -> str:
    """The error's text without the (temporary) path it names."""
    text = str(e).replace(str(path), "").strip(" :")
    return text.split(" — ")[0] or type(e).__name__
