"""Train several configs under one budget, evaluate each, and write a report.

    python -m musicrnn.experiments run configs/exp1_baseline.yaml configs/exp2_pitch_weight.yaml \
        --budget-minutes 10 --data-root PATH --parallel 2 --threads 1
    python -m musicrnn.experiments report

``run`` trains each config with ``musicrnn.fit`` under the same wall-clock budget (``trainer.max_time``;
windows seen are recorded too), evaluates its best checkpoint in this process
(``musicrnn.evaluation.run.evaluate``, as ``python -m musicrnn.evaluate`` does), and upserts one JSON row
per config into ``reports/experiments.jsonl``. ``baselines`` adds the n-gram floor, the real-vs-real
ceiling (over seeds, with its spread) and the structure of the reference continuations (the pianist's,
the prime looped, a trigram). ``report`` turns those rows into ``reports/experiments.md`` and
``reports/val_loss.png``. Every number in the report comes from a row.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from musicrnn.cli.baselines import add_baseline_args, baselines
from musicrnn.cli.gallery import GALLERY_OUT, SHIPPED_GALLERY, write_gallery
from musicrnn.cli.options import (
    add_timing_temperature_arg,
    set_threads,
)
from musicrnn.cli.report import read_scalars, upsert_row, write_report
from musicrnn.errors import ConfigError, cli_main
from musicrnn.evaluation.run import DEFAULT_TEMPERATURES, evaluate, overlaps
from musicrnn.io_utils import atomic_write
from musicrnn.model.checkpoint import load_checkpoint, load_checkpoint_dict
from musicrnn.runfiles import CHECKPOINT_DIR, LAST_CHECKPOINT
from musicrnn.sampling.defaults import DEFAULT_TEMPERATURE, DEFAULT_TIMING_TEMPERATURE, DEFAULT_TOP_P

EVALUATING = threading.Lock()  # one evaluation at a time: runs train in parallel, piano rolls are not thread-safe

def config_summary(path: Path) -> str:
    """The config's header comment (first comment lines): what the experiment changes."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    return " ".join(lines).strip() or path.stem


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


DATA_ROOT = "DATA_ROOT"  # what the recorded command says instead of this machine's data path


def fit_command(cfg: Path, a: argparse.Namespace, run_dir: Path) -> list[str]:
    ckpt_dir = run_dir / CHECKPOINT_DIR
    minutes, seconds = divmod(round(a.budget_minutes * 60), 60)
    hours, minutes = divmod(minutes, 60)
    fit = [sys.executable, "-m", "musicrnn.fit", "--config", str(cfg),
           "--trainer.max_time", f"00:{hours:02d}:{minutes:02d}:{seconds:02d}", "--trainer.max_epochs", "100000",
           "--trainer.enable_progress_bar", "false",
           "--checkpoint.dirpath", str(ckpt_dir), "--periodic_checkpoint.dirpath", str(ckpt_dir),
           "--trainer.logger.init_args.save_dir", str(run_dir), "--trainer.logger.init_args.name", "tb"]
    if a.data_root:
        fit += ["--data.root", a.data_root]
    if a.train_windows_per_epoch:
        fit += ["--data.train_windows_per_epoch", str(a.train_windows_per_epoch)]
    if a.val_windows:
        fit += ["--data.val_windows", str(a.val_windows)]
    return fit + a.fit_args


def run_one(cfg: Path, a: argparse.Namespace) -> dict:
    """Train ``cfg`` under the budget, then ``record_one`` it."""
    name = cfg.stem + (f"@{a.tag}" if a.tag else "")
    run_dir = Path(a.runs_dir) / name
    fit = fit_command(cfg, a, run_dir)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"[{name}] training for {a.budget_minutes} min: {shlex.join(fit)}", file=sys.stderr)
    t0 = time.perf_counter()
    with open(run_dir / "fit.log", "w") as log:
        rc = subprocess.call(fit, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    if rc != 0:
        tail = (run_dir / "fit.log").read_text().strip().splitlines()[-1:]
        raise ConfigError(f"{cfg}: training failed (exit {rc}): {' '.join(tail)} — see {run_dir / 'fit.log'}")
    command = ["python", "-m", "musicrnn.experiments", "run", str(cfg), "--budget-minutes", str(a.budget_minutes),
               "--threads", str(a.threads)] + _common_args(a)
    return record_one(name, cfg, run_dir, a, wall_minutes=wall / 60, command=command)


def _common_args(a: argparse.Namespace) -> list[str]:
    """The options of a recorded command that change its result (the data path written as DATA_ROOT)."""
    out = ["--tag", a.tag] if getattr(a, "tag", None) else []
    out += ["--data-root", DATA_ROOT] if a.data_root else []
    for flag, value in (("--train-windows-per-epoch", getattr(a, "train_windows_per_epoch", None)),
                        ("--val-windows", getattr(a, "val_windows", None)),
                        ("--eval-samples", a.eval_samples), ("--eval-windows", a.eval_windows),
                        ("--top-p", a.top_p), ("--timing-temperature", a.timing_temperature)):
        if value:
            out += [flag, str(value)]
    if list(a.temperatures) != list(DEFAULT_TEMPERATURES):
        out += ["--temperatures", *map(str, a.temperatures)]
    fit_args = [DATA_ROOT if v == a.data_root else v for v in getattr(a, "fit_args", [])]
    return out + (["--fit-args", *fit_args] if fit_args else [])


def record_one(name: str, cfg: Path, run_dir: Path, a: argparse.Namespace, *, wall_minutes: float | None,
               command: list[str]) -> dict:
    """Evaluate the best checkpoint of a finished run in ``run_dir`` (in this process, at the sampling
    settings of ``a``) and upsert its report row."""
    ckpt_dir = run_dir / CHECKPOINT_DIR
    best = sorted(ckpt_dir.glob("best-*.ckpt"), key=os.path.getmtime)
    ckpt = best[-1] if best else ckpt_dir / LAST_CHECKPOINT
    print(f"[{name}] evaluating {ckpt}", file=sys.stderr)
    with EVALUATING:
        set_threads(a.threads)
        result = evaluate(load_checkpoint(ckpt), a.data_root, max_windows=a.eval_windows, samples=a.eval_samples,
                          temperatures=a.temperatures, top_p=a.top_p, timing_temperature=a.timing_temperature,
                          ceiling=True, references=False, roll_dir=Path(a.report_dir) / "rolls", roll_prefix=name)
    with atomic_write(run_dir / "eval.json", "w") as f:
        json.dump(result, f, indent=1)
    last = load_checkpoint_dict(str(ckpt_dir / LAST_CHECKPOINT))
    data = last.get("datamodule_hyper_parameters") or {}
    hp = (last.get("musicrnn") or {}).get("hparams", {})
    batch, length = int(data.get("batch_size", 64)), int(data.get("seq_length", 25))
    steps = int(last["global_step"])
    per_row = 1 if hp.get("loss_on", "last") == "last" and data.get("regime", "windows") == "windows" else length
    scalars = read_scalars(run_dir / "tb")
    # the validation loss: "val/loss" in older runs; now named for what it sums ("val/loss_nll", ...)
    val_loss = scalars.get("val/loss") or next((v for k, v in sorted(scalars.items()) if k.startswith("val/loss_")), [])
    best_i = min(range(len(val_loss)), key=lambda i: val_loss[i][1]) if val_loss else None

    def at_best(prefix: str) -> dict:
        series = {k.split("/", 1)[1]: v for k, v in scalars.items() if k.startswith(prefix + "/")}
        if best_i is None:
            return {k: v[-1][1] for k, v in series.items()}
        return {k: dict(v).get(val_loss[best_i][0]) for k, v in series.items()}

    row = {
        "kind": "run", "name": name, "config": str(cfg), "changed": config_summary(cfg),
        "parameters": result["parameters"], "global_step": steps, "windows_seen": steps * batch,
        "notes_predicted": steps * batch * per_row, "epochs": int(last["epoch"]),
        "wall_minutes": round(wall_minutes, 2) if wall_minutes is not None else None,
        "budget_minutes": getattr(a, "budget_minutes", None),
        "device": f"CPU, {a.threads} thread(s): {cpu_name()}", "val": at_best("val"), "val_piece": at_best("val_piece"),
        "train": at_best("train"),
        "val_loss_curve": [(s * batch, v) for s, v in val_loss],
        "val_pitch_ce_curve": [(s * batch, v) for s, v in scalars.get("val/pitch_ce", [])],
        "test": result["metrics"], "checkpoint": str(ckpt), "eval_samples": a.eval_samples,
        "ceiling": result["ceiling"]["mean_oa"], "ceiling_spread": [result["ceiling"][k] for k in ("min_oa", "max_oa")],
        "overlap": overlaps(result), "structure": {t: r["structure"] for t, r in result["samples"].items()},
        "sampling": result["sampling"],
        "command": shlex.join(command), "finished": time.strftime("%Y-%m-%d %H:%M"),
    }
    upsert_row(Path(a.report_dir), row)
    print(f"[{name}] done: val pitch_ce {row['val'].get('pitch_ce')}, test {result['metrics']}", file=sys.stderr)
    return row


def tune_memory(a: argparse.Namespace) -> dict:
    """Grid-search the fixed memory's size, theta and lambda on validation pieces; write ``--out``."""
    import torch

    from musicrnn.data.datamodule import MaestroDataModule
    from musicrnn.evaluation.cache_tuning import piece_outputs, tune, with_cache

    loaded = load_checkpoint(a.ckpt)
    dm = MaestroDataModule(root=a.data_root, seq_length=128, batch_size=16, regime="pieces",
                           sustain=bool(loaded.data.get("sustain", False)))
    dm.setup()
    best, _ = tune(piece_outputs(loaded.net, dm.pieces["validation"], a.chunks))
    with atomic_write(a.out) as f:
        torch.save(with_cache(load_checkpoint_dict(str(loaded.path)), best["size"], best["theta"], best["lambda"]), f)
    print(json.dumps(best))
    return best


def add_eval_args(p: argparse.ArgumentParser) -> None:
    """How a run's best checkpoint is evaluated (the sampling settings scored)."""
    p.add_argument("--eval-samples", type=int, default=8, help="test primes the samples are scored on")
    p.add_argument("--eval-windows", type=int, default=20000)
    p.add_argument("--temperatures", type=float, nargs="+", default=list(DEFAULT_TEMPERATURES))
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (default: off)")
    add_timing_temperature_arg(p)


@cli_main
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m musicrnn.experiments", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train + evaluate configs under one budget")
    r.add_argument("configs", nargs="+")
    r.add_argument("--budget-minutes", type=float, required=True)
    r.add_argument("--data-root", default=None)
    r.add_argument("--parallel", type=int, default=1, help="configs trained at once")
    r.add_argument("--threads", type=int, default=1, help="torch threads per run")
    r.add_argument("--train-windows-per-epoch", type=int, default=None, help="epoch size (validation cadence)")
    r.add_argument("--val-windows", type=int, default=None)
    add_eval_args(r)
    r.add_argument("--tag", default=None, help="suffix of the run names (e.g. 12min), to keep several budgets")
    r.add_argument("--runs-dir", default="runs")
    r.add_argument("--report-dir", default="reports")
    r.add_argument("--fit-args", nargs=argparse.REMAINDER, default=[], help="passed to musicrnn.fit (last)")
    rec = sub.add_parser("record", help="evaluate a run trained outside the runner and add its row")
    rec.add_argument("config")
    rec.add_argument("--run-dir", required=True, help="the run's folder: checkpoints/, tb/ (as `run` lays out)")
    rec.add_argument("--name", default=None)
    rec.add_argument("--wall-minutes", type=float, default=None)
    rec.add_argument("--command", default=None, help="how the run was trained (recorded in the report)")
    rec.add_argument("--data-root", default=None)
    rec.add_argument("--threads", type=int, default=1)
    add_eval_args(rec)
    rec.add_argument("--report-dir", default="reports")
    add_baseline_args(sub.add_parser("baselines", help="add the floor, ceiling and reference structure rows"))
    g = sub.add_parser("gallery", help="MIDI samples beside the real continuations, with piano rolls")
    g.add_argument("--ckpt", default=None, help="checkpoint (default: the pretrained model)")
    g.add_argument("--out", default=GALLERY_OUT, help=f"folder (default {GALLERY_OUT}, which git ignores; the "
                                                        f"shipped gallery is {SHIPPED_GALLERY})")
    g.add_argument("--data-root", default=None)
    g.add_argument("--count", type=int, default=4)
    g.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE, help="pitch temperature")
    add_timing_temperature_arg(g, DEFAULT_TIMING_TEMPERATURE)
    g.add_argument("--top-p", type=float, default=DEFAULT_TOP_P)
    g.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("tune-memory", help="add the fixed memory of the piece to a checkpoint, tuned on validation")
    t.add_argument("--ckpt", required=True)
    t.add_argument("--out", required=True, help="the checkpoint to write (the network with the tuned memory)")
    t.add_argument("--data-root", default=None)
    t.add_argument("--chunks", type=int, default=60, help="chunks of 128 notes per validation stream scored")
    rep = sub.add_parser("report", help="write reports/experiments.md and figures from the rows")
    rep.add_argument("--report-dir", default="reports")
    a = p.parse_args(argv)
    if a.cmd == "tune-memory":
        return tune_memory(a)
    if a.cmd == "report":
        print(write_report(Path(a.report_dir)))
        return
    if a.cmd == "gallery":
        print(write_gallery(a.ckpt, Path(a.out), data_root=a.data_root, count=a.count, temperature=a.temperature,
                            top_p=a.top_p, seed=a.seed, timing_temperature=a.timing_temperature))
        return
    if a.cmd == "baselines":
        baselines(a, DATA_ROOT)
        print(write_report(Path(a.report_dir)))
        return
    if a.cmd == "record":
        cfg = Path(a.config)
        name = a.name or cfg.stem
        command = shlex.split(a.command) if a.command else ["python", "-m", "musicrnn.fit", "--config", str(cfg)]
        record_one(name, cfg, Path(a.run_dir), a, wall_minutes=a.wall_minutes, command=command)
        print(write_report(Path(a.report_dir)))
        return
    cfgs = [Path(c) for c in a.configs]
    for c in cfgs:
        if not c.is_file():
            raise ConfigError(f"config {c} does not exist — see configs/ for the available experiments")
    failures = []
    with ThreadPoolExecutor(max(1, a.parallel)) as pool:
        futures = {pool.submit(run_one, c, a): c for c in cfgs}
        for fut in futures:
            try:
                fut.result()
            except ConfigError as e:
                failures.append(str(e))
                print(f"error: {e}", file=sys.stderr)
    print(write_report(Path(a.report_dir)))
    if failures:
        raise ConfigError(f"{len(failures)} of {len(cfgs)} experiments failed (see above)")


if __name__ == "__main__":
    main()
