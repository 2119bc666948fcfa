"""Kill-and-resume benchmark: how much work a SIGKILL costs, and whether resuming is exact.

    python benchmarks/fault_test.py [--kills 7,10,17] [--save-kill 4] [--every-n-steps 3] [--epochs 3]

Trains a tiny model on the bundled sample uninterrupted, then again while SIGKILLing it at each
``--kills`` step (then once halfway through the ``--save-kill``-th checkpoint write of the next leg),
resuming with ``--ckpt_path last`` after every kill. Prints, per kill, the step of the surviving
last.ckpt and the steps lost, checks every *.ckpt loads with ``weights_only=True``, and compares the
final weights, optimizer state, LR scheduler and best val/loss with the uninterrupted run.
Runs in a temp folder; takes a few minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

TINY = ["--model.net.init_args.hidden_size", "8", "--data.train_windows_per_epoch", "320",
        "--data.batch_size", "32", "--data.val_windows", "64", "--checkpoint_every_minutes", "0",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.logger", "false"]  # 10 steps per epoch


REPO = Path(__file__).resolve().parents[1]
# the fault hooks are test code (tests/faults.py), passed to fit on the command line
FAULT_ARGS = ["--trainer.callbacks+=faults.FaultInjector", "--trainer.plugins=faults.KillInSaveIO"]


def fit(cwd: Path, args: list[str], env: dict[str, str] | None = None) -> tuple[int, float]:
    t = time.perf_counter()
    path = os.pathsep.join([str(REPO / "tests"), str(REPO)])
    r = subprocess.run([sys.executable, "-m", "musicrnn.fit", *args, *FAULT_ARGS], cwd=cwd, capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": path, **(env or {})}, timeout=600)
    if r.returncode not in (0, -9):
        sys.exit(f"fit failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r.returncode, time.perf_counter() - t


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def max_diff(a: dict, b: dict) -> float:
    return max(float((a["state_dict"][k] - b["state_dict"][k]).abs().max()) for k in a["state_dict"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kills", default="7,10,17", help="optimizer steps at which to SIGKILL (increasing)")
    p.add_argument("--save-kill", type=int, default=2,
                   help="then kill inside this checkpoint write of the next leg (0 = off)")
    p.add_argument("--every-n-steps", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    a = p.parse_args()
    args = TINY + ["--trainer.max_epochs", str(a.epochs), "--checkpoint_every_n_steps", str(a.every_n_steps)]
    kills = [int(k) for k in a.kills.split(",") if k]
    os.environ.setdefault("MUSICRNN_CACHE", tempfile.mkdtemp(prefix="musicrnn-cache-"))

    with tempfile.TemporaryDirectory() as tmp:
        ref_dir, run_dir = Path(tmp, "uninterrupted"), Path(tmp, "killed")
        ref_dir.mkdir()
        run_dir.mkdir()
        _, t_ref = fit(ref_dir, args)
        ref = load(ref_dir / "checkpoints" / "last.ckpt")
        print(f"uninterrupted: {ref['global_step']} steps in {t_ref:.1f}s")

        rows, resume = [], []
        events = [("step", k) for k in kills] + ([("save", a.save_kill)] if a.save_kill else [])
        for kind, n in events:
            env = {"MUSICRNN_FAULT_KILL_IN_SAVE": str(n)} if kind == "save" else {"MUSICRNN_FAULT_KILL_AT_STEP": str(n)}
            rc, _ = fit(run_dir, args + resume, env)
            ckpts = sorted((run_dir / "checkpoints").glob("*.ckpt"))
            for c in ckpts:
                load(c)  # raises on a torn checkpoint
            saved = load(run_dir / "checkpoints" / "last.ckpt")["global_step"]
            killed_at = n if kind == "step" else None
            rows.append({"kill": f"at step {n}" if kind == "step" else f"inside checkpoint write #{n}",
                         "killed": rc == -9, "last_ckpt_step": saved,
                         "steps_lost": (killed_at - saved) if killed_at is not None else None,
                         "ckpts_loadable": len(ckpts)})
            print(f"kill {rows[-1]['kill']:<28s} -> last.ckpt at step {saved:3d}, steps lost "
                  f"{rows[-1]['steps_lost'] if killed_at is not None else '<= ' + str(a.every_n_steps)}, "
                  f"{len(ckpts)} *.ckpt all load (weights_only)")
            resume = ["--ckpt_path", "last"]
        _, t_last = fit(run_dir, args + resume)
        final = load(run_dir / "checkpoints" / "last.ckpt")

    best = next(k for k in ref["callbacks"] if k.startswith("ModelCheckpoint{'monitor': 'val/loss'"))
    same = {
        "global_step": ref["global_step"] == final["global_step"],
        "weights_max_abs_diff": max_diff(ref, final),
        "lr_scheduler": ref["lr_schedulers"] == final["lr_schedulers"],
        "best_val_loss": [float(ref["callbacks"][best]["best_model_score"]),
                          float(final["callbacks"][best]["best_model_score"])],
    }
    match = same["global_step"] and same["weights_max_abs_diff"] <= 1e-6 and same["lr_scheduler"] \
        and abs(same["best_val_loss"][0] - same["best_val_loss"][1]) <= 1e-6
    print(f"resumed run matches uninterrupted: {match} (max |dw| = {same['weights_max_abs_diff']:.2e}, "
          f"best val/loss {same['best_val_loss'][0]:.6f} vs {same['best_val_loss'][1]:.6f})")
    print(json.dumps({"kills": rows, "final": same, "match": match}))
    sys.exit(0 if match else 1)


if __name__ == "__main__":
    main()
