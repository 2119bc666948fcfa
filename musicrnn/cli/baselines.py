"""``python -m musicrnn.experiments baselines``: the rows every model is read against — the pitch n-gram
floor, the real-vs-real ceiling over seeds (with its spread), and the structure of the reference
continuations (the pianist's, the prime looped, a pitch trigram) on the split's primes.
"""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from musicrnn.cli.report import upsert_row
from musicrnn.evaluation.floor_ceiling import file_pitches, ngram_floor, real_ceiling
from musicrnn.evaluation.ngram import PitchNgram
from musicrnn.evaluation.samples import reference_scores
from musicrnn.evaluation.windows import prime_pairs


def add_baseline_args(b: argparse.ArgumentParser) -> None:
    b.add_argument("--data-root", default=None)
    b.add_argument("--window", type=int, default=50, help="validation window (as the val/pitch_ce it is compared with)")
    b.add_argument("--val-windows", type=int, default=6400)
    b.add_argument("--counts", type=int, nargs="+", default=[8, 32], help="excerpts per real set")
    b.add_argument("--seeds", type=int, default=10, help="seeds of the real-vs-real ceiling (its spread)")
    b.add_argument("--split", default="test", choices=("test", "validation"), help="primes and ceiling sets")
    b.add_argument("--primes", type=int, default=32, help="primes of the structure reference rows")
    b.add_argument("--prime-length", type=int, default=50)
    b.add_argument("--num-notes", type=int, default=200)
    b.add_argument("--long-notes", type=int, default=1000, help="continuation length for the register drift")
    b.add_argument("--report-dir", default="reports")


def baselines(a: argparse.Namespace, data_root_word: str) -> None:
    """Upsert the n-gram floor rows, the real-vs-real ceiling rows (over seeds) and the structure rows of
    the reference continuations on the split's primes."""
    command = ["python", "-m", "musicrnn.experiments", "baselines"]
    command += ["--data-root", data_root_word] if a.data_root else []
    report = Path(a.report_dir)
    for row in ngram_floor(a.data_root, window=a.window, val_windows=a.val_windows):
        upsert_row(report, {"kind": "floor", **row, "command": shlex.join(command)})
    for count in a.counts:
        c = real_ceiling(a.data_root, num_notes=a.num_notes, count=count, seeds=a.seeds, split=a.split)
        upsert_row(report, {"kind": "ceiling", "name": f"real vs real ({count})", **c})
    pairs = prime_pairs(a.data_root, a.split, a.prime_length, a.long_notes, a.primes, seed=0)
    trigram = PitchNgram(3).fit(file_pitches(a.data_root, "train"))
    for order, (ref, scored) in enumerate(reference_scores(pairs, a.num_notes, trigram).items()):
        upsert_row(report, {"kind": "structure", "name": ref, "order": order, "split": a.split,
                            "primes": len(pairs), "prime_length": a.prime_length, "num_notes": a.num_notes,
                            "long_notes": a.long_notes, "overlap": scored["overlap"],
                            "structure": scored["structure"], "command": shlex.join(command)})
