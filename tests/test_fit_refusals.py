"""Training options and situations ``fit`` refuses up front: one ``error:`` line, exit 2, earlier files intact.

In-process (``main(args)``), each case a parse and the checks before anything is built or written.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from musicrnn.cli.fit import main
from musicrnn.data.cache import SAMPLE_ROOT

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--model.net.init_args.hidden_size", "8", "--trainer.logger", "false"]


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "earlier.txt").write_bytes(b"a file from before")
    return tmp_path


def _refused(args: list[str], capsys, run_dir: Path, keep=("earlier.txt",)) -> str:
    with pytest.raises(SystemExit) as e:
        main(SMALL + args)
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.strip() and not line.startswith(("parsing MIDI", "musicrnn: parsed"))]  # cache progress
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(keep)
    assert (run_dir / "earlier.txt").read_bytes() == b"a file from before"
    return err[0]


@pytest.mark.parametrize("args, expect", [
    (["--trainer.accumulate_grad_batches", "0"], "--trainer.accumulate_grad_batches must be >= 1"),
    (["--trainer.val_check_interval", "0"], "--trainer.val_check_interval must be > 0"),
    (["--seed_everything", "-1"], "--seed_everything must be in [0, 4294967295]"),
    (["--seed_everything", str(10**23)], "--seed_everything must be in [0, 4294967295]"),
    (["--early_stopping.patience", "-3"], "--early_stopping.patience must be >= 0"),
    (["--data.num_workers", "100000"], "--data.num_workers 100000: this machine gives this run"),
    (["--data.regime", "pieces"], "set --model.loss_on all"),
])
def test_impossible_training_option(run_dir, capsys, args, expect):
    assert expect in _refused(args, capsys, run_dir)


def test_a_huge_network_is_refused_before_allocating(run_dir, capsys):
    line = _refused(["--model.net.init_args.hidden_size", "16384", "--model.net.init_args.num_layers", "64"],
                    capsys, run_dir)
    assert "parameters" in line and "GB to train" in line and "GB available" in line


def test_a_config_cannot_name_a_foreign_class_as_the_core(run_dir, capsys):
    marker = run_dir / "ran"
    (run_dir / "evil.yaml").write_text(f"model:\n  net:\n    class_path: os.system\n"
                                       f"    init_args:\n      command: touch {marker}\n")
    line = _refused(["--config", "evil.yaml"], capsys, run_dir, keep=("earlier.txt", "evil.yaml"))
    assert "'os.system' is not a musicrnn core" in line and not marker.exists()


def test_an_unwritable_log_folder(run_dir, capsys):
    (run_dir / "logs").write_text("a file where the log folder should be")
    line = _refused(["--trainer.logger", "true", "--trainer.logger.class_path",
                     "lightning.pytorch.loggers.TensorBoardLogger", "--trainer.logger.init_args.save_dir", "logs"],
                    capsys, run_dir, keep=("earlier.txt", "logs"))
    assert "log folder logs" in line and "cannot be written" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_log_folder(run_dir, capsys):
    (run_dir / "logs").mkdir()
    (run_dir / "logs").chmod(0o555)
    line = _refused(["--trainer.logger", "true", "--trainer.logger.class_path",
                     "lightning.pytorch.loggers.TensorBoardLogger", "--trainer.logger.init_args.save_dir", "logs"],
                    capsys, run_dir, keep=("earlier.txt", "logs"))
    assert "cannot be written" in line


def test_an_empty_validation_split_is_refused(run_dir, capsys, tmp_path):
    data = run_dir / "one_file"
    data.mkdir()
    for f in sorted(SAMPLE_ROOT.rglob("*.midi"))[:1]:  # no CSV: one file, in the train split
        shutil.copy(f, data / f.name)
    from musicrnn.data.cache import list_files

    if any(f.split == "validation" for f in list_files(data, 0)):
        pytest.skip("this split of one file has a validation file")
    line = _refused(["--data.root", str(data)], capsys, run_dir, keep=("earlier.txt", "one_file"))
    assert "no validation windows" in line and "--trainer.limit_val_batches 0" in line


@pytest.mark.parametrize("args, expect", [
    (["--data.batch_size", "64"], "--data.batch_size 32, this run has 64"),
    (["--data.seq_length", "9"], "--data.seq_length 8, this run has 9"),
    (["--data.regime", "pieces", "--model.loss_on", "all"], "--data.regime windows, this run has pieces"),
])
def test_resuming_with_other_data_settings(run_dir, capsys, tiny_ckpt, args, expect):
    shutil.copy(tiny_ckpt, run_dir / "tiny.ckpt")
    line = _refused(["--data.seq_length", "8", "--data.batch_size", "32", "--ckpt_path", "tiny.ckpt", *args],
                    capsys, run_dir, keep=("earlier.txt", "tiny.ckpt"))
    assert expect in line


def test_a_full_disk_while_taking_the_run_lock(tmp_path):
    """A write limit of 0 bytes makes the PID write fail as on a full disk (EFBIG instead of ENOSPC)."""
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))\n"
            "from musicrnn import runlock\n"
            "from musicrnn.errors import CheckpointError\n"
            "try:\n"
            "    with runlock.hold(sys.argv[1]):\n"
            "        print('held')\n"
            "except CheckpointError as e:\n"
            "    print('error:', e)\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ckpts")], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60, check=False)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith("error: cannot write the run lock in") and "held" not in r.stdout
    assert list((tmp_path / "ckpts").iterdir()) == []  # no half-written lock left behind
