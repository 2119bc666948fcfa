"""Train several configs under one budget, evaluate each, and write a report.

    python -m musicrnn.experiments run configs/exp1_baseline.yaml configs/exp2_pitch_weight.yaml \
        --budget-minutes 10 --data-root PATH --parallel 2 --threads 1
    python -m musicrnn.experiments report

``run`` trains each config with ``musicrnn.fit`` under the same wall-clock budget (``trainer.max_time``;
windows seen are recorded too), evaluates its best checkpoint with ``musicrnn.evaluate``, and
upserts one JSON row per config into ``reports/experiments.jsonl``. ``report`` turns those rows into
``reports/experiments.md`` and ``reports/val_loss.png``. Every number in the report comes from a row.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from musicrnn.errors import ConfigError, cli_main
from musicrnn.io_utils import atomic_write

ROWS = "experiments.jsonl"


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
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """All scalar series of the TensorBoard event files under ``logdir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, list[tuple[int, float]]] = {}
    for ev in sorted(logdir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(ev), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            series.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return series


def load_rows(report_dir: Path) -> list[dict]:
    path = report_dir / ROWS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def upsert_row(report_dir: Path, row: dict) -> None:
    """Replace or add ``row`` by name; a lock file serialises runners writing the same report."""
    import fcntl

    report_dir.mkdir(parents=True, exist_ok=True)
    with open(report_dir / (ROWS + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [r for r in load_rows(report_dir) if r["name"] != row["name"]] + [row]
        with atomic_write(report_dir / ROWS, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


def run_one(cfg: Path, a: argparse.Namespace) -> dict:
    name = cfg.stem + (f"@{a.tag}" if a.tag else "")
    run_dir = Path(a.runs_dir) / name
    ckpt_dir = run_dir / "checkpoints"
    minutes, seconds = divmod(int(round(a.budget_minutes * 60)), 60)
    fit = [sys.executable, "-m", "musicrnn.fit", "--config", str(cfg),
           "--trainer.max_time", f"00:00:{minutes:02d}:{seconds:02d}", "--trainer.max_epochs", "100000",
           "--trainer.enable_progress_bar", "false",
           "--checkpoint.dirpath", str(ckpt_dir), "--periodic_checkpoint.dirpath", str(ckpt_dir),
           "--trainer.logger.init_args.save_dir", str(run_dir), "--trainer.logger.init_args.name", "tb"]
    if a.data_root:
        fit += ["--data.root", a.data_root]
    if a.train_windows_per_epoch:
        fit += ["--data.train_windows_per_epoch", str(a.train_windows_per_epoch)]
    if a.val_windows:
        fit += ["--data.val_windows", str(a.val_windows)]
    fit += a.fit_args
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
    best = sorted(ckpt_dir.glob("best-*.ckpt"), key=os.path.getmtime)
    ckpt = best[-1] if best else ckpt_dir / "last.ckpt"
    ev_json = run_dir / "eval.json"
    ev = [sys.executable, "-m", "musicrnn.evaluate", "--ckpt", str(ckpt), "--out", str(ev_json),
          "--samples", str(a.eval_samples), "--rolls", str(Path(a.report_dir) / "rolls"), "--roll-prefix", name,
          "--max-windows", str(a.eval_windows)]
    if a.data_root:
        ev += ["--data-root", a.data_root]
    print(f"[{name}] evaluating {ckpt}", file=sys.stderr)
    with open(run_dir / "eval.log", "w") as log:
        rc = subprocess.call(ev, env=env, stdout=log, stderr=subprocess.STDOUT)
    if rc != 0:
        raise ConfigError(f"{ckpt}: evaluation failed (exit {rc}) — see {run_dir / 'eval.log'}")
    result = json.loads(ev_json.read_text())
    import torch

    last = torch.load(ckpt_dir / "last.ckpt", map_location="cpu", weights_only=True)
    batch = (last.get("datamodule_hyper_parameters") or {}).get("batch_size", 64)
    scalars = read_scalars(run_dir / "tb")
    val_loss = scalars.get("val/loss", [])
    val = {k.split("/", 1)[1]: v[-1][1] for k, v in scalars.items() if k.startswith("val/")}
    best_i = min(range(len(val_loss)), key=lambda i: val_loss[i][1]) if val_loss else None
    val_at_best = {k.split("/", 1)[1]: dict(v).get(val_loss[best_i][0]) for k, v in scalars.items()
                   if k.startswith("val/")} if best_i is not None else val
    from musicrnn.stats import mean_overlap

    row = {
        "name": name, "config": str(cfg), "changed": config_summary(cfg),
        "parameters": result["parameters"], "global_step": int(last["global_step"]),
        "windows_seen": int(last["global_step"]) * int(batch), "epochs": int(last["epoch"]),
        "wall_minutes": round(wall / 60, 2), "budget_minutes": a.budget_minutes,
        "device": f"CPU, {a.threads} thread(s): {cpu_name()}", "val": val_at_best,
        "val_loss_curve": [(s * batch, v) for s, v in val_loss],
        "val_pitch_ce_curve": [(s * batch, v) for s, v in scalars.get("val/pitch_ce", [])],
        "test": result["metrics"], "checkpoint": str(ckpt),
        "overlap": {t: mean_overlap(r["compare"]) for t, r in result["samples"]["temperatures"].items()},
        "command": shlex.join(["python", "-m", "musicrnn.experiments", "run", str(cfg), "--budget-minutes",
                               str(a.budget_minutes), "--threads", str(a.threads)]
                              + (["--tag", a.tag] if a.tag else [])
                              + (["--data-root", a.data_root] if a.data_root else [])
                              + (["--train-windows-per-epoch", str(a.train_windows_per_epoch)]
                                 if a.train_windows_per_epoch else [])
                              + (["--val-windows", str(a.val_windows)] if a.val_windows else [])),
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }
    upsert_row(Path(a.report_dir), row)
    print(f"[{name}] done: val pitch_ce {val_at_best.get('pitch_ce')}, test {result['metrics']}", file=sys.stderr)
    return row


def _fmt(v, nd=3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _short(text: str, limit: int = 150) -> str:
    """The first sentence of a config's header, for a table cell."""
    text = text.replace("|", "/")
    end = text.find(". ")
    text = text[: end + 1] if 0 < end < limit else text
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def write_report(report_dir: Path) -> Path:
    rows = sorted(load_rows(report_dir), key=lambda r: r["name"])
    if not rows:
        raise ConfigError(f"no experiment rows in {report_dir / ROWS} — run `python -m musicrnn.experiments run` first")
    temps = sorted({t for r in rows for t in r["overlap"]}, key=float)
    lines = ["# Experiments", "",
             "Generated by `python -m musicrnn.experiments report` from `experiments.jsonl`; every number below "
             "comes from the runner (none typed by hand). Val metrics are at the best validation epoch, on a "
             "seeded subset of validation windows, always for the next note after a full window. Test metrics "
             "are of the best checkpoint on a seeded subset of test windows. Overlap = mean overlap area of "
             "generated vs real note-statistics distributions (1 = indistinguishable), per sampling temperature.",
             "", "## Training and validation", "",
             "| experiment | what changed | params | budget min | wall min | windows seen | epochs | val loss | "
             "val pitch CE | val step MAE | val dur MAE |", "|" + "---|" * 11]
    for r in rows:
        v = r["val"]
        lines.append("| " + " | ".join([
            r["name"], _short(r["changed"]), _fmt(r["parameters"]), _fmt(r.get("budget_minutes"), 1),
            _fmt(r["wall_minutes"], 1), _fmt(r["windows_seen"]), _fmt(r["epochs"]), _fmt(v.get("loss")),
            _fmt(v.get("pitch_ce")), _fmt(v.get("step_mae")), _fmt(v.get("duration_mae"))]) + " |")
    lines += ["", "## Test split and samples", "",
              "| experiment | test pitch CE | test acc | test top-5 | test step MAE | test dur MAE | test NLL | "
              + " | ".join(f"overlap T={t}" for t in temps) + " |", "|" + "---|" * (7 + len(temps))]
    for r in rows:
        t = r["test"]
        lines.append("| " + " | ".join([
            r["name"], _fmt(t.get("test/pitch_ce")), _fmt(t.get("test/pitch_acc")), _fmt(t.get("test/pitch_top5")),
            _fmt(t.get("test/step_mae")), _fmt(t.get("test/duration_mae")), _fmt(t.get("test/nll"))]
            + [_fmt(r["overlap"].get(x)) for x in temps]) + " |")
    lines += ["", "Device: " + "; ".join(sorted({r["device"] for r in rows})), "",
              "![validation loss](val_loss.png)", "", "## Reproduce", ""]
    lines += [f"- `{r['name']}`: `{r['command']}`" for r in rows]
    rolls = sorted((report_dir / "rolls").glob("*.png")) if (report_dir / "rolls").exists() else []
    if rolls:
        lines += ["", "## Piano rolls of samples", ""]
        lines += [f"![{p.stem}](rolls/{p.name})" for p in rolls]
    out = report_dir / "experiments.md"
    with atomic_write(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    _plot_curves(rows, report_dir / "val_loss.png")
    return out


def _plot_curves(rows: list[dict], path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    colors = plt.get_cmap("tab20").colors
    for ax, key, label in ((axes[0], "val_pitch_ce_curve", "val pitch cross-entropy (nats/note, comparable)"),
                           (axes[1], "val_loss_curve", "val/loss (each config's own weighted loss)")):
        for i, r in enumerate(rows):
            if r.get(key):
                xs, ys = zip(*r[key])
                ax.plot(xs, ys, marker=".", label=r["name"], color=colors[i % len(colors)])
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:.0f}k"))
        ax.set_xlabel("training windows seen")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    with atomic_write(path) as f:
        f.write(buf.getvalue())


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
    r.add_argument("--eval-samples", type=int, default=8)
    r.add_argument("--eval-windows", type=int, default=20000)
    r.add_argument("--tag", default=None, help="suffix of the run names (e.g. 12min), to keep several budgets")
    r.add_argument("--runs-dir", default="runs")
    r.add_argument("--report-dir", default="reports")
    r.add_argument("--fit-args", nargs=argparse.REMAINDER, default=[], help="passed to musicrnn.fit (last)")
    rep = sub.add_parser("report", help="write reports/experiments.md and figures from the rows")
    rep.add_argument("--report-dir", default="reports")
    a = p.parse_args(argv)
    if a.cmd == "report":
        print(write_report(Path(a.report_dir)))
        return
    cfgs = [Path(c) for c in a.configs]
    for c in cfgs:
        if not c.is_file():
            raise ConfigError(f"config {c} does not exist — see configs/ for the available experiments")
    failures = []
    with ThreadPoolExecutor(max(1, a.parallel)) as pool:
        futures = {pool.submit(run_one, c, a): c for c in cfgs}
        for fut, c in futures.items():
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
