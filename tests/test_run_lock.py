"""One run per checkpoint folder: a second fit is refused with the first run's PID, a dead run's lock
is taken over, and a save removes only its own and dead runs' temp files."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli_checks import TINY, exit_code, one_error, snapshot
from musicrnn.cli import fit
from musicrnn.errors import CheckpointError
from musicrnn.runlock import LOCK_NAME, hold, stale_temps
from musicrnn.training.callbacks import AtomicCheckpointIO

REPO = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_second_run_in_a_checkpoint_folder_is_refused_and_a_dead_runs_lock_is_taken_over(run_dir, capsys):
    ck = run_dir / "ck"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from musicrnn.runlock import hold\n"
         "with hold(sys.argv[1]):\n    print('held', flush=True); time.sleep(300)", str(ck)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "held"
        (ck / "last.ckpt").write_bytes(os.urandom(5000))  # the other run's checkpoint ...
        (ck / f".last.ckpt.{holder.pid}.abcd1234.tmp").write_bytes(os.urandom(3000))  # ... and its write in flight
        before = snapshot(ck)
        code = exit_code(fit.main, [*TINY, "--trainer.max_steps", "1", "--checkpoint.dirpath", str(ck)])
        one_error(capsys, code, f"checkpoint folder {ck} is in use", f"(PID {holder.pid})", "--checkpoint.dirpath")
        assert snapshot(ck) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the holder died: its lock and temp file are stale; the next run takes over and cleans up after it
    assert (ck / LOCK_NAME).read_text().strip() == str(holder.pid)
    fit.main([*TINY, "--trainer.max_steps", "1", "--checkpoint.dirpath", str(ck)])
    assert sorted(p.name for p in ck.iterdir()) == ["last.ckpt"]
    assert torch.load(ck / "last.ckpt", weights_only=True)["global_step"] == 1


def test_a_save_removes_only_temp_files_of_itself_and_dead_runs(tmp_path):
    path = tmp_path / "last.ckpt"
    live = tmp_path / ".last.ckpt.1.livewrite.tmp"  # PID 1 is always alive: another run mid-write
    dead = tmp_path / f".last.ckpt.{_dead_pid()}.deadwrite.tmp"
    mine = tmp_path / f".last.ckpt.{os.getpid()}.oldwrite.tmp"
    for p in (live, dead, mine):
        p.write_bytes(b"partial")
    assert sorted(stale_temps(path)) == sorted([str(dead), str(mine)])
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.ckpt", live.name])
    assert live.read_bytes() == b"partial"


def test_lock_is_exclusive_and_released(tmp_path):
    with hold(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(CheckpointError, match=rf"in use by another musicrnn.fit run \(PID {os.getpid()}\)"):
            with hold(tmp_path):
                pass
    assert not (tmp_path / LOCK_NAME).exists()
    with hold(tmp_path):  # free again
        pass
