"""Fault tolerance of training: atomic checkpoints, exact resume after SIGKILL, NaN guard.

The kill tests run ``python -m musicrnn.fit`` in a subprocess on the bundled sample with a tiny model
and SIGKILL it deterministically through the test hooks of ``faults.FaultInjector`` (tests/faults.py, passed on
the command line)
(at a given step, or halfway through a given checkpoint write).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from faults import ENV_KILL_AT_STEP, ENV_KILL_IN_SAVE, ENV_NAN_AT_STEP, ENV_SIGNAL_AT_STEP, FAULT_ARGS
from musicrnn.data.resumable import ResumableLoader, rng_state, set_rng_state
from musicrnn.training.callbacks import AtomicCheckpointIO, NaNGuard, TrainingDiverged

# 10 steps per epoch, last.ckpt every 3 steps (and at each epoch end), 2 epochs = 20 steps
TINY = ["--model.net.init_args.hidden_size", "8", "--data.train_windows_per_epoch", "320",
        "--data.batch_size", "32", "--data.val_windows", "64", "--trainer.max_epochs", "2",
        "--checkpoint_every_n_steps", "3", "--checkpoint_every_minutes", "0",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.logger", "false"]
BEST_KEY = "ModelCheckpoint{'monitor': 'val/loss'"
# whole pieces: 16 streams x 128 notes of the 6 training files = 9 batches per epoch, 2 epochs
PIECES = ["--data.regime", "pieces", "--data.seq_length", "128", "--data.batch_size", "16",
          "--model.loss_on", "all", "--data.val_window_length", "25"]


def _fit(cwd: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1])])  # faults, musicrnn
    return subprocess.run([sys.executable, "-m", "musicrnn.fit", *TINY, *FAULT_ARGS, *extra], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": path, **(env or {})})


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _all_checkpoints_load(folder: Path) -> None:
    for p in folder.glob("*.ckpt"):
        _load(p)  # raises on a torn file


def _same_final_state(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"]
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=0, atol=1e-6, msg=k)
    for s_a, s_b in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        torch.testing.assert_close(s_b["exp_avg"], s_a["exp_avg"], rtol=0, atol=1e-6)
    assert a["lr_schedulers"] == b["lr_schedulers"]
    best = next(k for k in a["callbacks"] if k.startswith(BEST_KEY))
    torch.testing.assert_close(b["callbacks"][best]["best_model_score"], a["callbacks"][best]["best_model_score"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    cwd = tmp_path_factory.mktemp("uninterrupted")
    r = _fit(cwd)
    assert r.returncode == 0, r.stderr[-2000:]
    return _load(cwd / "checkpoints" / "last.ckpt")


# ---- subprocess kill tests ---------------------------------------------------------------------------
@pytest.mark.slow
def test_kill_at_epoch_end_and_mid_epoch_then_resume_matches_uninterrupted(tmp_path, uninterrupted):
    r = _fit(tmp_path, env={ENV_KILL_AT_STEP: "10"})  # right after epoch 0 (saved after its validation)
    assert r.returncode == -9, r.stderr[-2000:]
    assert _load(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 10
    r = _fit(tmp_path, "--ckpt_path", "last", env={ENV_KILL_AT_STEP: "14"})  # epoch 1, batch 4; saved at 12
    assert r.returncode == -9, r.stderr[-2000:]
    _all_checkpoints_load(tmp_path / "checkpoints")
    assert _load(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 12
    r = _fit(tmp_path, "--ckpt_path", "last")
    assert r.returncode == 0, r.stderr[-2000:]
    _same_final_state(uninterrupted, _load(tmp_path / "checkpoints" / "last.ckpt"))


@pytest.mark.slow
@pytest.mark.parametrize("sig, at, code", [("TERM", 14, 143), ("INT", 7, 130)])
def test_sigterm_and_ctrl_c_write_last_ckpt_exit_nonzero_and_resume_exactly(tmp_path, uninterrupted, sig, at, code):
    r = _fit(tmp_path, env={ENV_SIGNAL_AT_STEP: f"{at}:{sig}"})  # arrives during step at+1 (mid-epoch)
    assert r.returncode == code, r.stderr[-2000:]
    assert f"SIG{sig}" in r.stderr and "Traceback" not in r.stderr
    assert _load(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == at + 1  # nothing lost
    r = _fit(tmp_path, "--ckpt_path", "last")
    assert r.returncode == 0, r.stderr[-2000:]
    _same_final_state(uninterrupted, _load(tmp_path / "checkpoints" / "last.ckpt"))


@pytest.mark.slow
def test_pieces_regime_kill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    whole = tmp_path / "whole"
    r = _fit(whole, *PIECES)
    assert r.returncode == 0, r.stderr[-2000:]
    want = _load(whole / "checkpoints" / "last.ckpt")
    assert want["global_step"] == 18 and want["musicrnn_carry"] is not None
    run = tmp_path / "killed"
    r = _fit(run, *PIECES, env={ENV_KILL_AT_STEP: "14"})  # epoch 1, batch 5; last.ckpt of step 12
    assert r.returncode == -9, r.stderr[-2000:]
    saved = _load(run / "checkpoints" / "last.ckpt")
    assert saved["global_step"] == 12 and saved["musicrnn_carry"] is not None  # the carried LSTM state
    r = _fit(run, *PIECES, "--ckpt_path", "last")
    assert r.returncode == 0, r.stderr[-2000:]
    _same_final_state(want, _load(run / "checkpoints" / "last.ckpt"))


@pytest.mark.slow
def test_kill_inside_checkpoint_write_keeps_previous_file(tmp_path, uninterrupted):
    # writes: 1 = step 3, 2 = step 6, 3 = step 9 (killed halfway through the temp file)
    r = _fit(tmp_path, env={ENV_KILL_IN_SAVE: "3"})
    assert r.returncode == -9, r.stderr[-2000:]
    folder = tmp_path / "checkpoints"
    assert [p.name for p in folder.glob("*.ckpt")] == ["last.ckpt"]
    assert any(p.name.endswith(".tmp") for p in folder.iterdir())  # the torn write, never a *.ckpt
    assert _load(folder / "last.ckpt")["global_step"] == 6  # the old complete file
    r = _fit(tmp_path, "--ckpt_path", "last")
    assert r.returncode == 0, r.stderr[-2000:]
    _all_checkpoints_load(folder)
    assert not any(p.name.endswith(".tmp") for p in folder.iterdir())  # stale temp cleaned on next write
    _same_final_state(uninterrupted, _load(folder / "last.ckpt"))


@pytest.mark.slow
def test_nan_loss_stops_with_one_line_and_keeps_last_good_checkpoint(tmp_path):
    r = _fit(tmp_path, env={ENV_NAN_AT_STEP: "13"})
    assert r.returncode == 2, r.stderr[-2000:]
    last_line = r.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: loss became NaN at step 13 (epoch 1)")
    assert "--model.lr" in last_line and "checkpoints/last.ckpt" in last_line
    assert "Traceback" not in r.stderr
    ckpt = _load(tmp_path / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 12
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


# ---- in-process units --------------------------------------------------------------------------------
def test_atomic_checkpoint_io_writes_complete_file_and_no_temp(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "ck" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.arange(10.0)}}, path)
    io.save_checkpoint({"state_dict": {"w": torch.arange(20.0)}}, path)
    assert _load(path)["state_dict"]["w"].shape == (20,)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


def test_rng_state_roundtrips_through_weights_only_load(tmp_path):
    import random

    import numpy as np

    state = rng_state()
    torch.save({"rng": state}, tmp_path / "s.pt")
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(_load(tmp_path / "s.pt")["rng"])
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_resumable_loader_continues_the_same_epoch():
    ds = TensorDataset(torch.arange(100))
    make = lambda: ResumableLoader(DataLoader(ds, batch_size=10, sampler=RandomSampler(ds, num_samples=60)))  # noqa: E731
    torch.manual_seed(0)
    full = [b[0].tolist() for b in make()]
    torch.manual_seed(0)
    loader = make()
    it = iter(loader)
    head = [next(it)[0].tolist() for _ in range(2)]
    saved, rng = loader.state_dict(), rng_state()
    torch.manual_seed(123)  # a new process: different RNG until the checkpoint restores it
    resumed = make()
    set_rng_state(rng)
    resumed.load_state_dict(saved)
    tail = [b[0].tolist() for b in resumed]
    assert head + tail == full
    assert resumed.state_dict()["fetched"] == 6


class _FakeTrainer:
    global_step, current_epoch = 1234, 3


def test_nan_guard_names_the_step_and_refuses_nan_weights(tmp_path):
    guard = NaNGuard(str(tmp_path / "last.ckpt"))
    with pytest.raises(TrainingDiverged, match=r"loss became NaN at step 1234 \(epoch 3\).*no checkpoint"):
        guard.on_before_backward(_FakeTrainer(), None, torch.tensor(float("nan")))
    guard.on_before_backward(_FakeTrainer(), None, torch.tensor(1.0))  # finite: fine
    (tmp_path / "last.ckpt").write_bytes(b"x")
    with pytest.raises(TrainingDiverged, match=r"weights became non-finite \(w\).*last good checkpoint"):
        guard.on_save_checkpoint(_FakeTrainer(), None, {"state_dict": {"w": torch.tensor([1.0, float("inf")])}})
