"""Evaluation windows and primes come from the data module: its splits, stride and seeded subset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from musicrnn.data.datamodule import MaestroDataModule
from musicrnn.evaluation.windows import (
    composer_lookup,
    data_module,
    prime_pairs,
    window_starts,
)
from musicrnn.sampling.generator import place_after


def test_window_starts_are_the_data_modules_with_stride_and_subset():
    dm = data_module(None, 25, split="validation", max_windows=300, stride=3)
    starts = window_starts(dm, "validation")
    loader_windows = torch.cat([b[0] for b in dm.split_dataloader("validation")])
    assert len(starts) == len(loader_windows) == 300 and (np.diff(starts) > 0).all()
    feats = dm.datasets["validation"].features
    assert torch.equal(loader_windows[:, :, 0], torch.stack([feats[s: s + 26, 0] for s in starts]))
    every = window_starts(data_module(None, 25, split="validation", stride=3), "validation")
    assert set(starts) <= set(every) and len(np.unique(np.diff(every))) > 1  # stride 3 within each file


def test_prime_pairs_are_seeded_disjoint_and_contiguous():
    a = prime_pairs(None, "validation", 10, 20, 3, seed=5)
    b = prime_pairs(None, "validation", 10, 20, 3, seed=5)
    assert len(a) == 3
    for x, y in zip(a, b):
        assert len(x.prime) == 10 and len(x.continuation) == 20 and x.prime.start[0] == 0.0
        assert (x.prime.pitch == y.prime.pitch).all() and (x.continuation.start == y.continuation.start).all()
        assert x.continuation.start[0] >= 0  # times from the prime's last onset, as generate returns them
    whole = place_after(a[0].prime, a[0].continuation)
    assert len(whole) == 30 and (np.diff(whole.start) >= -1e-9).all()
    firsts = {tuple(p.prime.pitch[:10]) for p in a}
    assert len(firsts) == 3


def test_unknown_composers_are_scored_as_unknown_with_a_note():
    from musicrnn.model.cores import LSTMNet
    from musicrnn.model.network import MusicNet

    dm = MaestroDataModule(seq_length=8)
    assert composer_lookup(dm, MusicNet(lambda d: LSTMNet(d, hidden_size=4)))[0] is None  # not conditioned
    same = MusicNet(lambda d: LSTMNet(d, hidden_size=4), composer_dim=2, composers=dm.composers)
    lookup, note = composer_lookup(dm, same)
    assert note is None and lookup.tolist() == list(range(len(dm.composers)))  # same data: identity
    fewer = MusicNet(lambda d: LSTMNet(d, hidden_size=4), composer_dim=2, composers=dm.composers[:3])
    lookup, note = composer_lookup(dm, fewer)  # a model that knew only two of them
    assert lookup.tolist()[:3] == [0, 1, 2] and set(lookup.tolist()[3:]) == {0}
    assert note.startswith(f"{len(dm.composers) - 3} of the {len(dm.composers) - 1} composers")


def test_a_split_without_windows_is_one_clear_error():
    from musicrnn.errors import ConfigError

    with pytest.raises(ConfigError, match="too few notes for windows of 60001 notes"):
        data_module(None, 60000, split="test")
