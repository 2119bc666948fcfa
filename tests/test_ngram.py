"""The n-gram floor (musicrnn.ngram): hand-computed values, normalisation, and the bundled sample."""
from __future__ import annotations

import numpy as np
import pytest

from musicrnn.evaluation.ngram import VOCAB, PitchNgram, context_codes, piece_targets


def test_unigram_is_add_one():
    m = PitchNgram(1).fit([np.array([60, 60, 62])])
    assert m.prob(np.zeros((1, 1), np.int64), np.array([60]))[0] == pytest.approx(3 / 131)
    assert m.prob(np.zeros((1, 1), np.int64), np.array([0]))[0] == pytest.approx(1 / 131)


def test_bigram_absolute_discounting_by_hand():
    # bigrams (BOS,60) (60,62) (62,60) (60,62) (62,64): counts of counts n1 = 3, n2 = 1 -> D = 3 / 5
    m = PitchNgram(2).fit([np.array([60, 62, 60, 62, 64])])
    d = 3 / 5
    assert m.discount == [pytest.approx(d)]
    uni = lambda p: ([60, 62, 60, 62, 64].count(p) + 1) / (5 + 128)  # noqa: E731
    # context 62 was seen twice, followed by 60 and 64 (two types)
    want = (1 - d) / 2 + d * 2 / 2 * uni(60)
    assert m.prob(np.array([[62]]), np.array([60]))[0] == pytest.approx(want)
    # an unseen context backs off to the unigram
    assert m.prob(np.array([[70]]), np.array([60]))[0] == pytest.approx(uni(60))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_distributions_sum_to_one(order):
    rng = np.random.default_rng(0)
    files = [rng.integers(55, 70, size=300) for _ in range(3)]
    m = PitchNgram(order).fit(files)
    ctx = np.repeat(files[0][:max(order - 1, 1)][None], VOCAB, axis=0)
    assert m.prob(ctx, np.arange(VOCAB)).sum() == pytest.approx(1.0)


def test_context_codes_and_piece_targets_agree():
    f = np.array([60, 62, 64, 65])
    ctx, tgt = piece_targets([f], 2)
    assert tgt.tolist() == [62, 64, 65]
    assert ctx.tolist() == [[VOCAB, 60], [60, 62], [62, 64]]
    assert context_codes(f, 1).tolist() == [VOCAB, 60, 62, 64]


def test_floor_on_the_bundled_sample():
    """Golden values: the pitch n-gram floor of the bundled 10-file sample (its CSV split)."""
    from musicrnn.evaluation.floor_ceiling import ngram_floor

    rows = ngram_floor(None, window=25, val_windows=500, orders=(1, 3))
    ces = [r["val"]["pitch_ce"] for r in rows]
    assert ces == pytest.approx(GOLDEN_SAMPLE_FLOOR, abs=1e-6)


GOLDEN_SAMPLE_FLOOR = [4.077606837135563, 4.598616479584156]  # 1-gram, 3-gram
