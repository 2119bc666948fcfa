"""Whole-piece batches (musicrnn.pieces) on the bundled MAESTRO sample: coverage, continuity, and
carried state equal to one long forward pass."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from musicrnn.data.batches import PieceBatch, WindowBatch
from musicrnn.data.cache import build_or_load
from musicrnn.data.datamodule import MaestroDataModule, note_features
from musicrnn.data.pieces import PieceChunks, mask_state
from musicrnn.errors import ConfigError
from musicrnn.model.cores import LSTMNet, StackedLSTM
from musicrnn.model.lightning import MusicModel

L, B = 32, 4


@pytest.fixture(scope="module")
def sample_features():
    cache = build_or_load(None, progress=False, verbose=False)
    ids = list(range(len(cache.files)))
    feats, offs = note_features(cache, ids)
    return feats, offs


def _records(ds: PieceChunks, seed: int) -> list[list[tuple]]:
    return ds._train_plan(np.random.default_rng(seed), 1)


def test_train_plan_covers_each_note_once_and_streams_walk_files_in_order(sample_features):
    feats, offs = sample_features
    ds = PieceChunks(feats, offs, np.zeros(len(offs) - 1, np.int64), L, B, train=True)
    streams = _records(ds, 0)
    assert len(streams) == B and len({len(s) for s in streams}) == 1
    assert len(streams[0]) == ds.total_chunks // B == len(ds)
    seen = np.zeros(len(feats), np.int64)
    for s in streams:
        for j, (f, start, _, _, first) in enumerate(s):
            assert offs[f] <= start and start + L + 1 <= offs[f + 1]  # chunks never cross a file
            seen[start + 1: start + L + 1] += 1  # predicted notes
            if j and not first:  # the next chunk of the same file continues where the last one stopped
                pf, pstart = s[j - 1][0], s[j - 1][1]
                assert pf == f and start == pstart + L
    assert seen.max() == 1  # every note predicted at most once per epoch
    # all but each file's slack (< L notes) and the streams' remainder (< B chunks) is covered
    lost = int(((offs[1:] - offs[:-1] - 1) % L).sum()) + (ds.total_chunks % B) * L
    assert seen.sum() == ds.total_chunks // B * B * L and seen.sum() + lost == (len(feats) - (len(offs) - 1))


def test_validation_streams_predict_every_note_exactly_once(sample_features):
    feats, offs = sample_features
    ds = PieceChunks(feats, offs, np.arange(len(offs) - 1), L, B, train=False)
    batches = list(ds)
    assert len(batches) == len(ds)
    masked = sum(int(b[3].sum()) for b in batches)
    assert masked == len(feats) - (len(offs) - 1)  # every note but each file's first is a target
    chunk, comp, reset, mask = batches[0]
    assert chunk.shape == (B, L + 1, 4) and reset.all() and mask.dtype == torch.bool


def test_train_epochs_are_seeded_and_reshuffled(sample_features):
    feats, offs = sample_features
    ds = PieceChunks(feats, offs, np.zeros(len(offs) - 1, np.int64), L, B, train=True, transpose=3)
    torch.manual_seed(5)
    a = [b[0] for b in ds]
    torch.manual_seed(5)
    b = [b[0] for b in ds]
    c = [b[0] for b in ds]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_mask_state_zeroes_rows_and_detaches():
    h = torch.ones(2, 3, 5, requires_grad=True)
    out = mask_state([(h * 2, h * 3)], torch.tensor([True, False, True]))
    assert not out[0][0].requires_grad
    assert out[0][0][:, 1].abs().sum() == 0 and torch.all(out[0][1][:, 0] == 3)


@pytest.mark.parametrize("core", [lambda d: LSTMNet(d, 16), lambda d: StackedLSTM(d, [16, 8], 0.0)])
def test_carried_state_equals_one_pass_over_each_file(core):
    """Whole-piece validation NLL through chunks with carried state == one forward over each file."""
    torch.manual_seed(0)
    dm = MaestroDataModule(None, seq_length=L, batch_size=B, regime="pieces", max_files=4)
    dm.setup("fit")
    model = MusicModel(net=core, loss_on="all", pitch_embedding=8, timing_head="binned", seq_length=L).eval()
    ds = dm.pieces["validation"] if len(dm.pieces["validation"]) else dm.pieces["train"]
    ds = PieceChunks(ds.features.numpy(), ds.offsets, ds.composer, L, B, train=False)
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in ds:
            _, _, out, tgt, mask = model.compute_loss(batch, "val")
            total += float((model.heads["pitch"].elementwise_loss(out["pitch"], tgt["pitch"]) * mask).sum())
            count += int(mask.sum())
        ref, ref_n = 0.0, 0
        for f in range(len(ds.offsets) - 1):
            x = ds.features[ds.offsets[f]: ds.offsets[f + 1]].unsqueeze(0)
            out, _ = model(x[:, :-1])
            ref += float(model.heads["pitch"].elementwise_loss(out["pitch"], x[:, 1:, 0].long()).sum())
            ref_n += x.shape[1] - 1
    assert count == ref_n
    assert total / count == pytest.approx(ref / ref_n, rel=1e-5)


def test_batches_say_their_regime(sample_features):
    feats, offs = sample_features
    ds = PieceChunks(feats, offs, np.zeros(len(offs) - 1, np.int64), L, B, train=True)
    batch = next(iter(ds))
    assert isinstance(batch, PieceBatch) and batch.regime == "pieces" and batch.window.shape == (B, L + 1, 4)
    dm = MaestroDataModule(None, seq_length=L, batch_size=B, max_files=4)
    dm.setup("fit")
    windows = next(iter(dm.split_dataloader("validation")))
    assert isinstance(windows, WindowBatch) and windows.regime == "windows" and windows.window.shape[1:] == (L + 1, 4)


def test_whole_piece_training_refuses_loss_on_last(sample_features):
    """Training on every note of a chunk while the user asked for the last position only: refused, not overridden."""
    feats, offs = sample_features
    batch = next(iter(PieceChunks(feats, offs, np.zeros(len(offs) - 1, np.int64), L, B, train=True)))
    with pytest.raises(ConfigError, match="--model.loss_on all"):
        MusicModel(net=lambda d: LSTMNet(d, 8), loss_on="last", seq_length=L).compute_loss(batch, "train")
    loss = MusicModel(net=lambda d: LSTMNet(d, 8), loss_on="all", seq_length=L).compute_loss(batch, "train")[0]
    assert torch.isfinite(loss)
