"""Where checkpoints go and what happens when they cannot: the every-N-epochs file follows
``--checkpoint.dirpath`` (named ``epochNNN.ckpt``, no library noise); a full disk is one line and keeps
the previous checkpoint; a folder given as a checkpoint says which file to pass."""
from __future__ import annotations

import os
import warnings

import pytest
import torch

from cli_checks import TINY, exit_code, one_error, snapshot, tmpfs
from musicrnn.cli import fit
from musicrnn.cli import sample as sample_cli
from musicrnn.errors import CheckpointError
from musicrnn.training.callbacks import AtomicCheckpointIO


def test_periodic_checkpoint_goes_to_checkpoint_dirpath_named_epochNNN_and_no_noise(run_dir, capsys):
    ck = run_dir / "ck"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.main([*TINY, "--checkpoint.dirpath", str(ck), "--periodic_checkpoint.every_n_epochs", "1",
                  "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                  "--trainer.limit_val_batches", "1", "--data.batch_size", "8"])
    names = sorted(p.name for p in ck.iterdir())
    assert "epoch000.ckpt" in names and "last.ckpt" in names, names
    assert not (run_dir / "checkpoints").exists()
    out = capsys.readouterr()
    text = out.out + out.err + "\n".join(str(w.message) for w in caught)
    for noise in ("litlogger", "GPU available: False", "TPU available: False", "LeafSpec",
                  "args parameter is intended"):
        assert noise not in text, noise


def test_full_checkpoint_folder_is_one_line_and_keeps_the_previous_checkpoint(run_dir, capsys):
    ck = run_dir / "small"
    with tmpfs(ck, "600k"):
        (ck / "last.ckpt").write_bytes(os.urandom(150_000))  # the previous checkpoint
        before = snapshot(ck)
        code = exit_code(fit.main, [*TINY, "--model.net.init_args.hidden_size", "256", "--trainer.max_steps", "1",
                                     "--checkpoint.dirpath", str(ck)])
        one_error(capsys, code, f"checkpoint folder {ck} is full", "needs", "free",
                   "--checkpoint.dirpath", "previous last.ckpt is kept")
        assert snapshot(ck) == before  # no temp file, no lock file, the old checkpoint byte for byte


def test_disk_filling_up_during_the_write_is_one_error_and_keeps_the_previous_file(tmp_path, monkeypatch):
    ck = tmp_path / "small"
    with tmpfs(ck, "600k"):
        (ck / "last.ckpt").write_bytes(os.urandom(100_000))
        before = snapshot(ck)
        # no room check first: the write itself hits ENOSPC
        monkeypatch.setattr("musicrnn.training.callbacks.check_room", lambda *a: None)
        with pytest.raises(CheckpointError, match=r"is full: last.ckpt needs .* — free space there"):
            AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(300_000)}, ck / "last.ckpt")
        assert snapshot(ck) == before


def test_a_folder_given_as_checkpoint_says_so_and_suggests_last_ckpt(run_dir, capsys):
    (run_dir / "ck").mkdir()
    (run_dir / "ck" / "last.ckpt").write_bytes(b"x")
    before = snapshot(run_dir)
    code = exit_code(fit.main, [*TINY, "--ckpt_path", "ck"])
    one_error(capsys, code, "ck is a folder", os.path.join("ck", "last.ckpt"))
    code = exit_code(sample_cli.main, ["--ckpt", "ck", "--out", "out.mid"])  # a run folder means its last.ckpt
    one_error(capsys, code, os.path.join("ck", "last.ckpt"), "not a readable checkpoint")
    assert snapshot(run_dir) == before
