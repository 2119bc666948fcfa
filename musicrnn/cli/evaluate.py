"""Evaluate a checkpoint: next-note metrics on a split, and samples scored against the pianist.

``python -m musicrnn.evaluate [--ckpt pretrained|last|RUN_FOLDER|PATH] [--data-root PATH] [--split test]
[--out eval.json]`` prints a summary on stderr and the numbers as JSON on stdout (all of them with
``--out``), computed by ``musicrnn.evaluation.run.evaluate``:

- metrics: pitch cross-entropy (nats/note), pitch accuracy top-1/top-5, step and duration MAE
  (seconds), velocity MAE and per-note NLL, for the note after each of the split's windows;
- samples: continuations of real primes of the split at each ``--temperatures`` value: note statistics
  and their overlap with the real continuations, and their structure against the prime (motif reuse,
  key fit, chords, velocity, register drift over ``--long-notes``); the same for the reference
  continuations (the pianist's, the prime looped, a pitch trigram);
- ``--ceiling``: the real-vs-real overlap over several seeds; ``--long-context``: pitch CE over whole
  pieces against only the 50 notes before each note.

Choose sampling settings with ``--split validation``; report them with ``--split test``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from musicrnn.cli.options import (
    add_checkpoint_arg,
    add_threads_arg,
    add_timing_temperature_arg,
    open_checkpoint,
    set_threads,
)
from musicrnn.errors import ConfigError, cli_main
from musicrnn.evaluation.run import (
    DEFAULT_TEMPERATURES,
    SPLITS,
    evaluate,
    overlaps,
    structure_rows,
)
from musicrnn.io_utils import atomic_write

SHOWN = ("motif_reuse", "key_fit", "chord_share", "chord_size", "velocity", "register_drift", "notes_per_second")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m musicrnn.evaluate", description=__doc__.split("\n")[0])
    add_checkpoint_arg(p)
    p.add_argument("--data-root", default=None, help="MIDI folder (default: $MUSICRNN_DATA or the bundled sample)")
    p.add_argument("--split", default="test", choices=SPLITS,
                   help="windows and primes from this split: validation to choose settings, test to report them")
    p.add_argument("--max-windows", type=int, default=20000, help="seeded subset of windows (0 = all)")
    p.add_argument("--temperatures", type=float, nargs="+", default=list(DEFAULT_TEMPERATURES),
                   help="sampling temperatures scored (pitch, and timing unless --timing-temperature)")
    add_timing_temperature_arg(p)
    p.add_argument("--samples", type=int, default=8, help="primes (and real continuations) per temperature")
    p.add_argument("--num-notes", type=int, default=200, help="notes per continuation for statistics and structure")
    p.add_argument("--long-notes", type=int, default=1000, help="notes per continuation for the register drift")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--rolls", default=None, help="folder for piano-roll PNGs of samples per temperature")
    p.add_argument("--roll-prefix", default="sample", help="file name prefix of the piano rolls")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (default: off)")
    p.add_argument("--prime-length", type=int, default=None, help="notes of real prime (default: seq_length)")
    p.add_argument("--ceiling", action="store_true",
                   help="also compare disjoint sets of real continuations, over 10 seeds (what real music reaches)")
    p.add_argument("--long-context", action="store_true",
                   help="also pitch CE over whole pieces with carried state against the last 50 notes only")
    p.add_argument("--no-references", action="store_true", help="skip the real / loop / trigram reference rows")
    p.add_argument("--out", default=None, help="write the whole result as JSON here")
    add_threads_arg(p)
    return p


def _check(a: argparse.Namespace) -> None:
    for name, value, low in (("--samples", a.samples, 1), ("--num-notes", a.num_notes, 2),
                             ("--long-notes", a.long_notes, 0), ("--max-windows", a.max_windows, 0)):
        if value < low:
            raise ConfigError(f"{name} must be >= {low}, got {value}")


def summary(result: dict) -> list[str]:
    """The lines printed on stderr: metrics, overlap per temperature, the structure table."""
    lines = ["  ".join(f"{k}={v:.4f}" for k, v in sorted(result["metrics"].items()))]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    ceiling = (result.get("ceiling") or {}).get("mean_oa")
    for t, v in overlaps(result).items():
        share = f" ({v / ceiling:.2f} of the real-vs-real {ceiling:.3f})" if ceiling else ""
        lines.append(f"T={t}: mean overlap with real music {v:.3f}{share}")
    rows = structure_rows(result)
    if rows:
        lines.append(f"{'structure':<10}" + "".join(f"{k:>17}" for k in SHOWN))
        lines += [f"{name:<10}" + "".join(f"{row.get(k, float('nan')):>17.3f}" for k in SHOWN)
                  for name, row in rows.items()]
    lc = result.get("long_context")
    if lc and lc.get("gain") is not None:
        lines.append(f"pitch CE over whole pieces {lc['whole_piece']:.3f}, with the last {lc['context']} notes only "
                     f"{lc['short_context']:.3f} (the piece buys {lc['gain']:.3f} nats)")
    return lines


@cli_main
def main(argv: list[str] | None = None) -> dict:
    a = _parser().parse_args(argv)
    _check(a)
    set_threads(a.threads)
    ckpt = open_checkpoint(a.ckpt)
    result = evaluate(ckpt, a.data_root, split=a.split, max_windows=a.max_windows or None,
                      temperatures=a.temperatures, samples=a.samples, num_notes=a.num_notes,
                      long_notes=a.long_notes, seed=a.seed, device=a.device, top_p=a.top_p,
                      timing_temperature=a.timing_temperature, ceiling=a.ceiling, long_context=a.long_context,
                      prime_length=a.prime_length, references=not a.no_references,
                      roll_dir=Path(a.rolls) if a.rolls else None, roll_prefix=a.roll_prefix)
    print("\n".join(summary(result)), file=sys.stderr)
    if a.out:
        with atomic_write(a.out, "w") as f:
            json.dump(result, f, indent=1)
    print(json.dumps({"metrics": result["metrics"], "overlap": overlaps(result),
                      "ceiling": result.get("ceiling"), "structure": structure_rows(result),
                      "long_context": result.get("long_context"), "notes": result["notes"]}))
    return result


if __name__ == "__main__":
    main()
