"""Every file in configs/ is a runnable experiment: instantiate it through the real CLI, train a few
steps on the bundled sample, and rebuild the model from the checkpoint it wrote (how the files are
composed, and that they resolve to the values they were run with: tests/test_config_composition.py).

In-process (``musicrnn.fit.main``) rather than a subprocess per config: importing Lightning once
keeps the whole file well under a minute on a 2-core CPU.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two threads spin against other users' work and
    run several times slower (see benchmarks/train_speed_variants.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_configs_exist():
    names = {c.stem for c in CONFIGS}
    for expected in ("baseline", "hybrid", "exp1_baseline", "exp2_pitch_weight", "exp3_seq50", "exp3b_seq100",
                     "exp4a_stacked", "exp4b_bidirectional", "exp4c_lstm_dense", "exp4d_hybrid",
                     "exp4e_transformer", "exp5_velocity", "exp6_transpose", "exp7_binned_timing"):
        assert expected in names


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_trains_and_reloads(config, tmp_path, monkeypatch):
    from musicrnn.cli.fit import main
    from musicrnn.model.checkpoint import load_network

    monkeypatch.chdir(tmp_path)  # logs/ land here
    monkeypatch.setattr("sys.argv", ["musicrnn.fit"])  # pytest's own flags are not the CLI's
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)  # the bundled sample
    ck = tmp_path / "ck"
    cli = main(["--config", str(config), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
                "--trainer.limit_val_batches", "2", "--data.batch_size", "16",  # "1" parses as 1.0 = all
                "--trainer.num_sanity_val_steps", "0",
                "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                "--checkpoint.dirpath", str(ck), "--periodic_checkpoint.dirpath", str(ck)])
    assert cli.trainer.global_step == 3
    metrics = cli.trainer.callback_metrics
    assert torch.isfinite(metrics["val/loss"]) and torch.isfinite(metrics["train/loss"])
    model = load_network(ck / "last.ckpt")  # the checkpoint alone rebuilds the variant
    assert type(model.core) is type(cli.model.network.core)
    assert model.hparams.seq_length == cli.datamodule.hparams.seq_length
    loaders = cli.datamodule.val_dataloader()  # whole-piece configs: [windows, pieces]
    window, composer = next(iter(loaders[0] if isinstance(loaders, list) else loaders))
    cli.model.eval()
    with torch.no_grad():
        want, _ = cli.model(window[:, :-1], composer)
        got, _ = model(window[:, :-1], composer)
    for k in want:
        torch.testing.assert_close(got[k], want[k])
    if model.hparams.timing_head == "binned":
        assert "val/nll" in metrics
    if model.hparams.velocity:
        assert "val/velocity_mae" in metrics

