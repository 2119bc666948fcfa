"""Next-note metrics equal what training logs for the same windows; long-context pitch CE carries state."""
from __future__ import annotations

import pytest

from musicrnn.evaluation.metrics import long_context_pitch_ce, window_metrics
from musicrnn.model.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def tiny(tiny_ckpt):
    return load_checkpoint(tiny_ckpt)


def test_window_metrics_equal_the_lightning_test_loop(tiny):
    import lightning as L

    from musicrnn.data.datamodule import MaestroDataModule
    from musicrnn.model.lightning import MusicModel

    weights = {k: tiny.hparams[f"{k}_weight"] for k in tiny.net.heads}
    ours, notes = window_metrics(tiny.net, None, "validation", max_windows=400, loss_weights=weights)
    dm = MaestroDataModule(seq_length=tiny.net.seq_length, batch_size=256, val_windows=400)
    dm.prepare_data()
    dm.setup()
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    (theirs,) = trainer.test(MusicModel.wrap(tiny.net, **tiny.hparams), dataloaders=dm.split_dataloader("validation"),
                             verbose=False)
    assert notes == []
    # the training loop names its loss for what it sums ("test/loss_pitch0.05_..."); evaluation: "val/loss"
    theirs = {("val/loss" if k.startswith("test/loss") else k.replace("test/", "val/")): v for k, v in theirs.items()}
    assert set(ours) == set(theirs)
    for k, v in theirs.items():
        assert ours[k] == pytest.approx(v, rel=1e-5), k


def test_long_context_is_measured_at_the_same_positions_and_chunking_does_not_matter(tiny):
    a = long_context_pitch_ce(tiny.net, None, "validation", context=20, max_positions=500, chunk=512)
    b = long_context_pitch_ce(tiny.net, None, "validation", context=20, max_positions=500, chunk=37,
                              pieces_per_batch=1, windows_per_batch=64)
    assert a["positions"] == b["positions"] == 500 and a["files"] == b["files"] > 0
    for k in ("whole_piece", "short_context", "whole_piece_every_note"):
        assert a[k] == pytest.approx(b[k], abs=1e-5), k
    assert a["gain"] == pytest.approx(a["short_context"] - a["whole_piece"])


def test_pretrained_golden_on_the_bundled_sample():
    """Golden values: the shipped model on the bundled sample's validation split (its composers by name)."""
    ck = load_checkpoint("pretrained")
    m, _ = window_metrics(ck.net, None, "validation", window=50, max_windows=500)
    assert m["val/pitch_ce"] == pytest.approx(2.7414, abs=1e-4)
    assert m["val/pitch_acc"] == pytest.approx(0.31, abs=1e-6)
    lc = long_context_pitch_ce(ck.net, None, "validation", max_positions=300)
    assert (lc["whole_piece"], lc["short_context"]) == pytest.approx(GOLDEN_LONG, abs=1e-4)


GOLDEN_LONG = (2.44766, 2.68192)  # whole piece, last 50 notes only (300 positions)
