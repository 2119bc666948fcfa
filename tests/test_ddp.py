"""Two-process DDP on CPU (gloo) through the real CLI, in both training regimes.

Each regime: a run that finishes; the same run sent SIGTERM at rank 0 only (a scheduler's signal), which
must make both ranks write ``last.ckpt`` and exit 143; and its resume, which must end with the weights
of the run that was never stopped. Tiny model, a few steps on the bundled sample, in subprocesses.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
DDP = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
TINY = ["--model.net.init_args.hidden_size", "8", "--data.seq_length", "8", "--data.batch_size", "4",
        "--trainer.max_epochs", "2", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--checkpoint_every_minutes", "0", "--samples_every_n_epochs", "0"]
REGIMES = {
    # 48 windows an epoch: 6 steps of 4 windows on each rank
    "windows": ["--data.train_windows_per_epoch", "48", "--data.val_windows", "16"],
    # the sample cut in chunks of 8 notes makes hundreds of steps: 6 an epoch, 4 validation batches
    "pieces": ["--data.regime", "pieces", "--model.loss_on", "all", "--data.val_windows", "16",
               "--trainer.limit_train_batches", "6", "--trainer.limit_val_batches", "4"],
}
STOP_AT = 3  # optimizer steps done when rank 0 gets SIGTERM; the step under way finishes, then all stop
needs_gloo = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="this torch build has no gloo backend")


def fit(cwd: Path, cache: Path, args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(REPO / "tests"), str(REPO)])  # tests/ for the fault-injecting callback
    env = {**os.environ, "MUSICRNN_CACHE": str(cache), "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **(env or {})}
    env.pop("MUSICRNN_DATA", None)
    cmd = [sys.executable, "-m", "musicrnn.fit", *TINY, *DDP, *args, "--trainer.callbacks+=faults.FaultInjector"]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)


def last(cwd: Path) -> dict:
    return torch.load(cwd / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


@pytest.mark.slow
@needs_gloo
@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_ddp_finishes_stops_on_sigterm_to_rank_zero_and_resumes_exactly(tmp_path, regime):
    cache = tmp_path / "cache"
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    whole.mkdir(), stopped.mkdir()
    args = REGIMES[regime]

    r = fit(whole, cache, args)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "Traceback" not in r.stderr and "warn" not in r.stderr.lower(), r.stderr[-3000:]
    ref = last(whole)
    steps = ref["global_step"]
    if regime == "windows":  # train_windows_per_epoch holds under DDP: 48 windows / 2 ranks / batch 4
        assert steps == 2 * 6
    assert steps > STOP_AT
    assert len(list((cache / "notes").glob("notes-*.npz"))) == 1  # the cache is built once, by rank 0

    r = fit(stopped, cache, args, env={"MUSICRNN_FAULT_SIGNAL_AT_STEP": f"{STOP_AT}:TERM",
                                       "MUSICRNN_FAULT_SIGNAL_RANK": "0"})
    assert r.returncode == 128 + 15, r.stderr[-4000:]
    assert last(stopped)["global_step"] == STOP_AT + 1  # nothing lost

    r = fit(stopped, cache, [*args, "--ckpt_path", "last"])
    assert r.returncode == 0, r.stderr[-4000:]
    resumed = last(stopped)
    assert resumed["global_step"] == steps
    diff = max(float((resumed["state_dict"][k] - ref["state_dict"][k]).abs().max()) for k in ref["state_dict"])
    assert diff == 0.0, f"resumed weights differ from the uninterrupted run by {diff}"
