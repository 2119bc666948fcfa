"""Golden values for musicrnn.evaluation.stats on hand-made sequences, plus a plausibility check on real MAESTRO."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from musicrnn.errors import MidiError
from musicrnn.evaluation import stats
from musicrnn.notes import Notes


def seq(pitches, step=0.5, dur=0.5, velocity=80, t0=0.0) -> Notes:
    """Monophonic sequence: one note every ``step`` seconds, each ``dur`` long."""
    starts = t0 + step * np.arange(len(pitches))
    return Notes.from_arrays(pitches, starts, starts + dur, np.full(len(pitches), velocity))


def chords(chord_list, step=1.0, velocity=80) -> Notes:
    """Block chords, each held exactly until the next one starts."""
    p, s = [], []
    for i, chord in enumerate(chord_list):
        p += list(chord)
        s += [i * step] * len(chord)
    s = np.array(s, float)
    return Notes.from_arrays(p, s, s + step, np.full(len(p), velocity))


C_MAJOR = [60, 62, 64, 65, 67, 69, 71]


def test_c_major_scale():
    f = stats.sequence_features(seq(C_MAJOR))
    assert f["pc_entropy"] == pytest.approx(math.log2(7))
    assert f["pitch_range"] == 11 and f["used_pitches"] == 7
    assert f["polyphony"] == 1.0 and f["polyphony_time"] == pytest.approx(1.0)  # touching, not overlapping
    assert f["note_density"] == pytest.approx(7 / 3.5)
    assert f["repeat_4gram"] == 0.0 and f["longest_run"] == 1
    np.testing.assert_allclose(f["ioi"], 0.5)
    np.testing.assert_allclose(stats.pitch_class_histogram(seq(C_MAJOR))[[0, 1, 2]], [1 / 7, 0, 1 / 7])


def test_repetition():
    f = stats.sequence_features(seq([60] * 10))
    assert f["longest_run"] == 10
    assert f["repeat_4gram"] == pytest.approx(6 / 7)  # 7 four-grams, all but the first repeat it
    assert f["pc_entropy"] == 0.0 and f["pitch_range"] == 0
    # ABCD ABCD: 4-grams ABCD BCDA CDAB DABC ABCD -> one repeat in five
    assert stats.repeated_ngram_share(np.array([60, 62, 64, 65] * 2)) == pytest.approx(1 / 5)
    assert stats.longest_run(np.array([1, 2, 2, 2, 3, 3])) == 3


def test_polyphony_chords():
    f = stats.sequence_features(chords([(60, 64, 67), (62, 65, 69), (64, 67, 71)]))
    assert f["polyphony"] == 3.0 and f["polyphony_time"] == pytest.approx(3.0)
    np.testing.assert_allclose(f["ioi"], [0, 0, 1, 0, 0, 1, 0, 0])
    # C-E-G held 0..2 s, a melody note 1..1.5 s: onsets see 3 then 4 notes; 6.5 note-s over 2 s
    held = Notes.from_arrays([60, 64, 67, 72], [0, 0, 0, 1], [2, 2, 2, 1.5])
    assert stats.polyphony(held) == 3.5
    assert stats.polyphony_time(held) == pytest.approx(3.25)
    # a silent gap does not count as time
    gap = Notes.from_arrays([60, 62], [0, 5], [1, 6])
    assert stats.polyphony_time(gap) == pytest.approx(1.0)


@pytest.mark.parametrize("notes", [Notes.empty(), seq([60]), seq([60, 60])], ids=["empty", "one", "two"])
def test_degenerate_sequences_are_finite(notes):
    f = stats.sequence_features(notes)
    for k in stats.SCALARS:
        assert math.isfinite(f[k]), k
    if len(notes) == 0:
        assert all(f[k] == 0.0 for k in stats.SCALARS)
    c = stats.compare([notes, seq(C_MAJOR)], [notes, seq(C_MAJOR)])
    assert all(math.isfinite(v) for v in c.values())
    json.dumps(c, allow_nan=False)


def test_overlap_of_known_gaussians():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 20000), rng.normal(1, 1, 20000)
    oa, kl = stats.overlap(a, b)
    assert oa == pytest.approx(2 * 0.5 * math.erfc(0.5 / math.sqrt(2)), abs=0.03)  # 2*Phi(-0.5) = 0.617
    assert kl == pytest.approx(0.5, abs=0.08)  # KL(N(1,1) || N(0,1)) = 0.5 nats
    assert stats.overlap(a, a) == pytest.approx((1.0, 0.0))
    assert stats.overlap(a, a + 20)[0] < 1e-3
    assert stats.overlap([3.0, 3.0], [3.0]) == (1.0, 0.0)


def _toy_set(rng, low: bool) -> list[Notes]:
    """Low register, slow, soft melodies vs. high register, fast, loud chords."""
    out = []
    for _ in range(6):
        if low:
            out.append(seq(rng.integers(30, 45, 20), step=1.0, dur=0.9, velocity=30))
        else:
            top = rng.integers(90, 100, 8)
            out.append(chords([(t - 7, t - 3, t) for t in top], step=0.1, velocity=110))
    return out


def test_compare_identical_and_disjoint_sets():
    rng = np.random.default_rng(1)
    low, high = _toy_set(rng, True), _toy_set(rng, False)
    same = stats.compare(low, low)
    for k, v in same.items():
        if k.endswith("/oa"):
            assert v == pytest.approx(1.0), k
        if k.endswith("/kl"):
            assert v == pytest.approx(0.0, abs=1e-9), k
    assert same["mean_oa"] == pytest.approx(1.0) and same["n_real"] == 6
    diff = stats.compare(low, high)
    for k in ("pitch/oa", "velocity/oa", "ioi/oa", "polyphony/oa", "polyphony/inter_oa", "mean_velocity/inter_oa"):
        assert diff[k] < 0.01, k
    assert diff["pitch/kl"] > 5 and diff["mean_oa"] < 0.3
    json.dumps(diff, allow_nan=False)


def test_describe():
    d = stats.describe([seq(C_MAJOR), seq([60] * 10)])
    assert d["longest_run"] == 5.5 and d["n_sequences"] == 2 and d["n_notes"] == 17
    assert d["pc_entropy"] == pytest.approx(math.log2(7) / 2)
    assert stats.describe([])["n_sequences"] == 0.0
    with pytest.raises(ValueError):
        stats.compare([], [seq(C_MAJOR)])


@pytest.mark.maestro
def test_real_maestro_values_are_plausible(maestro_root):
    maestro_dir = maestro_root  # conftest: skips cleanly without MAESTRO
    with open(maestro_dir / "maestro-v2.0.0.csv", newline="") as f:
        paths = [maestro_dir / r["midi_filename"] for r in csv.DictReader(f) if r["split"] == "test"]
    real = []
    for path in paths:  # skip the line-ending-damaged files; two good ones are enough
        try:
            real.append(Notes.from_midi(path))
        except MidiError:
            continue
        if len(real) == 2:
            break
    assert len(real) == 2
    for notes in real:
        f = stats.sequence_features(notes)
        assert 2.5 < f["pc_entropy"] <= math.log2(12) + 1e-9
        assert 24 <= f["pitch_range"] <= 87 and 1.0 <= f["polyphony"] < 12
        assert 1.0 <= f["polyphony_time"] < 12 and 1 < f["note_density"] < 40
        assert 0 <= f["repeat_4gram"] < 0.9 and 1 <= f["longest_run"] < 50
        assert 0 < f["mean_ioi"] < 1 and 0 < f["mean_duration"] < 3 and 20 < f["mean_velocity"] < 110
        assert (f["ioi"] >= 0).all() and (f["duration"] > 0).all()
    c = stats.compare(real[:1], real[1:])
    assert all(math.isfinite(v) for v in c.values())
    assert 0.3 < c["pitch/oa"] <= 1 and 0.3 < c["velocity/oa"] <= 1 and 0.3 < c["pc_hist/oa"] <= 1
