"""Heads: bin grids, the binned head's loss / median / sampler, and the shared logit sampler."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from musicrnn.model.heads import BinnedHead, PitchHead, PositivePressureHead, log_edges, sample_logits, velocity_edges


def _head(edges, log=True):
    return BinnedHead(4, edges, log=log)


def test_log_edges():
    e = log_edges(4.0, 64)
    assert e.shape == (65,) and e[0] == 0 and math.isclose(float(e[1]), 1e-3, rel_tol=1e-6)
    assert math.isclose(float(e[-1]), 4.0, rel_tol=1e-6) and (e.diff() > 0).all()
    ratios = e[2:] / e[1:-1]  # equal relative width
    torch.testing.assert_close(ratios, torch.full_like(ratios, float(ratios[0])))
    with pytest.raises(ValueError):
        log_edges(0.0005, 8)


def test_velocity_edges_and_bins():
    e = velocity_edges(32)
    assert e.tolist() == [1.0 + 4 * k for k in range(33)]
    head = _head(e, log=False)
    v = torch.tensor([1.0, 4, 5, 64, 124, 125, 127])
    assert head.bin_of(v).tolist() == [0, 0, 1, 15, 30, 31, 31]


def test_timing_bins():
    head = _head(log_edges(4.0, 64))
    t = torch.tensor([-0.1, 0.0, 0.0009, 0.001, 0.5, 3.99, 4.0, 100.0])
    k = head.bin_of(t)
    assert k[:3].tolist() == [0, 0, 0] and k[3] == 1 and k[-3:].tolist() == [63, 63, 63]
    assert head.edges[k[4]] <= 0.5 < head.edges[k[4] + 1]


def _peaked(k, n=64, big=30.0):
    logits = torch.zeros(n)
    logits[k] = big
    return logits


def test_loss_and_nll_are_bin_cross_entropy():
    head = _head(log_edges(4.0, 64))
    out = torch.randn(3, 5, 64, generator=torch.Generator().manual_seed(0))
    target = torch.rand(3, 5, generator=torch.Generator().manual_seed(1))
    ce = F.cross_entropy(out.reshape(-1, 64), head.bin_of(target).reshape(-1), reduction="none")
    torch.testing.assert_close(head.nll(out, target), ce)
    torch.testing.assert_close(head.loss(out, target), ce.mean())


def test_point_is_the_median():
    head = _head(log_edges(4.0, 64))
    # all mass in one bin: the median is that bin's log-midpoint
    k = 40
    lo, hi = head.edges[k], head.edges[k + 1]
    torch.testing.assert_close(head.point(_peaked(k)), (lo * hi).sqrt())
    # 60 % on "chord" (bin 0) and 40 % on a long step: the median is in bin 0; the mean would sit between
    logits = torch.full((64,), -1e9)
    logits[0], logits[50] = math.log(0.6), math.log(0.4)
    assert float(head.point(logits)) < 1e-3
    # linear bins interpolate linearly: uniform over 32 velocity bins -> median at velocity 65
    vel = _head(velocity_edges(32), log=False)
    torch.testing.assert_close(vel.point(torch.zeros(32)), torch.tensor(65.0))
    assert head.point(torch.zeros(2, 7, 64)).shape == (2, 7)


def test_sample_stays_in_the_chosen_bin_and_is_seeded():
    head = _head(log_edges(4.0, 64))
    out = _peaked(40).expand(500, 64)
    g = torch.Generator().manual_seed(0)
    s = head.sample(out, 1.0, g)
    assert ((s >= head.edges[40]) & (s < head.edges[41])).all() and s.std() > 0  # not quantised
    s2 = head.sample(out, 1.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(s, s2)
    torch.testing.assert_close(head.sample(out, 0.0), head.point(out))  # temperature 0 = median
    # bin 0 starts at 0: its samples are linear in [0, 1 ms)
    s0 = head.sample(_peaked(0).expand(200, 64), 1.0, g)
    assert (s0 >= 0).all() and (s0 < 1e-3).all()


def test_sample_follows_the_distribution():
    head = _head(velocity_edges(32), log=False)
    logits = torch.full((32,), -1e9)
    logits[5], logits[20] = math.log(0.25), math.log(0.75)
    s = head.sample(logits.expand(4000, 32), 1.0, torch.Generator().manual_seed(0))
    frac = (head.bin_of(s) == 20).float().mean()
    assert abs(float(frac) - 0.75) < 0.03
    assert set(head.bin_of(s).unique().tolist()) == {5, 20}


def test_sample_logits_filters():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]]).expand(300, 4)
    g = torch.Generator().manual_seed(0)
    assert set(sample_logits(logits, 1.0, top_k=2, generator=g).tolist()) <= {2, 3}
    assert set(sample_logits(logits, 1.0, top_p=0.5, generator=g).tolist()) == {3}
    assert (sample_logits(logits, 0.0) == 3).all()


def test_tutorial_heads():
    torch.manual_seed(0)
    pitch = PitchHead(4)
    out = pitch(torch.randn(2, 3, 4))
    assert out.shape == (2, 3, 128) and pitch.point(out).shape == (2, 3)
    mse = PositivePressureHead(4, pressure=10.0)
    pred, target = torch.tensor([-0.5, 0.5]), torch.tensor([0.0, 1.0])
    assert math.isclose(float(mse.loss(pred, target)), 0.25 + 10.0 * 0.25)  # mse + pressure * mean(relu(-x))
    assert mse.nll(pred, target) is None
    assert mse.sample(pred).tolist() == [0.0, 0.5]
