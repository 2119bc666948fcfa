"""Sampling cost, in one run on one machine: start-up of the CLI against ``import torch``, and per-note cost.

    python benchmarks/sample_cli.py [--repeats 5] [--notes 5000]

1. Wall time of ``python -m musicrnn.sample --ckpt BASELINE --num-notes 200`` vs ``python -c "import torch"``
   (interleaved repeats, medians; goal <= 1.5x).
2. Per-note cost at batch 1 through the one per-note path (``Generator`` -> ``MusicNet.step``), in process,
   for the baseline (goal <= 100 us) and the hybrid recipe (configs/hybrid.yaml), best of the repeats.
3. The same through the CLI: the marginal cost of ``--notes`` extra notes (``--num-notes 200+notes`` minus
   ``--num-notes 200``, interleaved, medians; goal <= 150 us).

The checkpoints are made by ``python -m musicrnn.fit`` (one optimizer step of configs/baseline.yaml and
configs/hybrid.yaml on the bundled sample) in a temp folder; timing does not depend on the weights.
One torch thread everywhere (the sample CLI's default). The last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def make_ckpt(config: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "musicrnn.fit", "--config", str(REPO / "configs" / config),
                    "--trainer.max_steps", "1", "--trainer.num_sanity_val_steps", "0", "--trainer.logger", "false",
                    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                    "--checkpoint.dirpath", str(folder), "--periodic_checkpoint.dirpath", str(folder)],
                   cwd=folder, env=ENV, check=True, capture_output=True)
    return folder / "last.ckpt"


def wall(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - t


def per_note_in_process(ckpt: Path, notes: int, repeats: int) -> float:
    """Seconds per note at batch 1 from a started generator (setup excluded), best of ``repeats``."""
    import torch

    from musicrnn.model.checkpoint import load_network
    from musicrnn.notes import Notes
    from musicrnn.sampling.generator import Generator, generate_with

    torch.set_num_threads(1)
    net = load_network(ckpt)
    n = net.seq_length
    prime = Notes.from_arrays([60 + i % 12 for i in range(n)], [0.25 * i for i in range(n)],
                              [0.25 * i + 0.2 for i in range(n)], [80] * n)
    best = float("inf")
    for _ in range(repeats):
        gen = Generator(net, seed=0)
        gen.start(prime, 1)
        t = time.perf_counter()
        generate_with(gen, notes)
        best = min(best, time.perf_counter() - t)
    return best / notes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--notes", type=int, default=5000, help="extra notes for the per-note costs")
    a = p.parse_args()
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ENV["MUSICRNN_CACHE"] = str(tmp / "cache")
        base, hybrid = make_ckpt("baseline.yaml", tmp / "baseline"), make_ckpt("hybrid.yaml", tmp / "hybrid")
        sample = [sys.executable, "-m", "musicrnn.sample", "--ckpt", str(base), "--seed", "0",
                  "--out", str(tmp / "out.mid")]
        times: dict[str, list[float]] = {"torch": [], "sample200": [], "sample_more": []}
        for _ in range(a.repeats):  # interleaved: load changes hit all three alike
            times["torch"].append(wall([sys.executable, "-c", "import torch"], tmp))
            times["sample200"].append(wall([*sample, "--num-notes", "200"], tmp))
            times["sample_more"].append(wall([*sample, "--num-notes", str(200 + a.notes)], tmp))
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["sample200"] / med["torch"]
        cli_us = (med["sample_more"] - med["sample200"]) / a.notes * 1e6
        base_us = per_note_in_process(base, a.notes, a.repeats) * 1e6
        hybrid_us = per_note_in_process(hybrid, a.notes, a.repeats) * 1e6
    print(f"import torch {med['torch']:.2f} s, sample --num-notes 200 {med['sample200']:.2f} s: "
          f"{ratio:.2f}x (goal <= 1.5x; medians of {a.repeats} interleaved)")
    print(f"per note, batch 1, in process (MusicNet.step): baseline {base_us:.0f} us (goal <= 100), "
          f"hybrid recipe {hybrid_us:.0f} us")
    print(f"per note through the CLI ({a.notes} extra notes): baseline {cli_us:.0f} us (goal <= 150)")
    print(json.dumps({"import_torch_s": med["torch"], "sample200_s": med["sample200"], "ratio": ratio,
                      "baseline_us": base_us, "hybrid_us": hybrid_us, "cli_us_per_note": cli_us,
                      "repeats": a.repeats}))


if __name__ == "__main__":
    main()
