"""Generated notes are written as MIDI from numpy in blocks: the bytes equal pretty_midi's for real,
empty and adversarial note lists at every block boundary, and the note buffer equals ``Notes.from_arrays``."""
from __future__ import annotations

import io

import numpy as np

from helpers import MAESTRO_FILE, pretty_midi_bytes
from musicrnn.midi import write as midiwrite
from musicrnn.notes import Notes
from musicrnn.sampling.notebuffer import NoteBuffer


def test_midi_writer_bytes_equal_pretty_midi(monkeypatch):
    rng = np.random.default_rng(0)
    n = 3000
    start = np.cumsum(rng.choice([0, 0, 0.0001, 0.01, 0.3, 5.0, 40.0], n))  # ties, sub-tick and long gaps
    cases = [Notes.from_midi(MAESTRO_FILE)[:2000], Notes.empty(),
             Notes.from_arrays(rng.integers(0, 128, n), start, start + rng.choice([1e-4, 0.01, 0.5, 30.0], n),
                               rng.integers(1, 128, n))]
    for chunk in (midiwrite.CHUNK, 7):  # block boundaries inside the data
        monkeypatch.setattr(midiwrite, "CHUNK", chunk)
        for notes in cases:
            got = io.BytesIO()
            notes.write_midi(got)
            assert got.getvalue() == pretty_midi_bytes(notes)


def test_note_buffer_equals_from_arrays():
    rng = np.random.default_rng(1)
    rows = np.stack([rng.integers(0, 128, (500, 2)), np.zeros((500, 2)), np.zeros((500, 2)),
                     rng.integers(1, 128, (500, 2))], axis=-1).astype(np.float64)  # (N, B, 4)
    rows[:, :, 1] = np.cumsum(rng.choice([0.0, 0.1], (500, 2)), axis=0)  # many equal onsets
    rows[:, :, 2] = rows[:, :, 1] + 0.05
    buf = NoteBuffer(2, capacity=3)  # grows
    for r in rows:
        buf.append(r)
    for b in range(2):
        ref, got = Notes.from_arrays(*rows[:, b].T), buf.notes(b)
        for name in ("pitch", "start", "end", "velocity"):
            assert np.array_equal(getattr(ref, name), getattr(got, name))
            assert getattr(ref, name).dtype == getattr(got, name).dtype
