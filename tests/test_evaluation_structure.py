"""Structure of a continuation against its prime: golden values on hand-made sequences and on real MIDI."""
from __future__ import annotations

import numpy as np
import pytest

from musicrnn.evaluation import structure as S
from musicrnn.evaluation.samples import loop_prime
from musicrnn.notes import Notes

C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


def seq(pitches, step=0.25, velocity=80) -> Notes:
    starts = step * np.arange(len(pitches))
    return Notes.from_arrays(pitches, starts, starts + 0.2, np.full(len(pitches), velocity))


def test_motif_reuse_counts_patterns_heard_earlier():
    # 9 patterns, 4 new
    assert S.structure(seq(C_MAJOR), seq([60, 62, 64, 65] * 3))["motif_reuse"] == pytest.approx(5 / 9)
    assert S.structure(seq(C_MAJOR), seq(list(range(40, 60))))["motif_reuse"] == 0.0


def test_longest_repeat_never_overlaps_itself():
    assert S.longest_repeat(np.array([1, 2, 3, 9, 1, 2, 3, 8])) == 3
    assert S.longest_repeat(np.array([5] * 10)) == 5  # 5 5 5 5 5 | 5 5 5 5 5
    assert S.longest_repeat(np.array([1, 2, 3, 4])) == 0
    assert S.longest_repeat(np.array([1, 2, 3, 7, 7, 7, 7, 7, 1, 2, 3])) == 3


def test_key_of_a_scale_and_fit_of_its_continuations():
    assert S.NAMES[S.best_key(seq(C_MAJOR))] == "C major"
    assert S.NAMES[S.best_key(seq([p + 7 for p in C_MAJOR]))] == "G major"
    prime = seq(C_MAJOR * 4)
    in_key = S.key_fit(prime, seq([60, 64, 67, 72, 67, 64] * 5))
    out_of_key = S.key_fit(prime, seq([61, 63, 66, 68, 70] * 5))
    assert in_key == pytest.approx(0.8338, abs=1e-4) and out_of_key < 0 < in_key


def test_chords_and_their_size():
    starts = np.array([0.0, 0.005, 0.01, 0.5, 1.0, 1.01])  # a 3-note chord, a note, a 2-note chord
    notes = Notes.from_arrays([60, 64, 67, 62, 60, 65], starts, starts + 0.3, [70] * 6)
    row = S.structure(seq(C_MAJOR), notes)
    assert row["chord_share"] == pytest.approx(3 / 5) and row["chord_size"] == pytest.approx(2.0)
    assert row["notes_per_second"] == pytest.approx(5 / 1.01)


def test_pitch_class_drift_and_register_drift():
    prime = seq(C_MAJOR)
    assert S.structure(prime, seq(C_MAJOR))["pc_drift"] == 0.0
    assert S.structure(prime, seq([61, 63, 66]))["pc_drift"] == pytest.approx(1.0)
    long = seq([60] * 900 + [48] * 100)
    assert S.register_drift(prime, long) == pytest.approx(48 - np.mean(C_MAJOR))


def test_looping_the_prime_reuses_motifs_and_keeps_the_key():
    prime = seq(C_MAJOR + [71, 69, 67, 65])
    row = S.structure(prime, loop_prime(prime, 120))
    assert row["motif_reuse"] > 0.85 and row["key_fit"] == pytest.approx(S.key_fit(prime, prime))


def test_real_music_golden():
    """Golden values: the first 64 notes of a bundled MAESTRO file as prime, the next 200 as continuation."""
    from helpers import MAESTRO_FILE

    notes = Notes.from_midi(MAESTRO_FILE)
    row = S.structure(notes[:64], notes[64:264])
    assert {k: round(v, 4) for k, v in row.items()} == GOLDEN_REAL


GOLDEN_REAL = {'motif_reuse': 0.0406, 'longest_repeat': 7.0, 'key_fit': 0.6273, 'pc_drift': 0.1788,
               'chord_share': 0.2613, 'chord_size': 1.3514, 'velocity': 49.81, 'register': 57.5,
               'notes_per_second': 4.8242}
