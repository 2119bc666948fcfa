"""Note-cache benchmark: the first build (check + parse + cache every file) with the fast reader beside a
pretty_midi-only build of the same files, then later loads, for a whole MIDI folder.

    python benchmarks/data_cache.py [ROOT] [--jobs N] [--loads K] [--no-pretty-midi]

CPU seconds (this process and the parse workers) are printed beside the wall times: on a busy machine
the wall time measures the other jobs too. ROOT defaults to ../shared/data/maestro-v2.0.0 (beside the repo).
Each build goes to a fresh temp cache
folder, so it always measures a real first run; the folders are deleted afterwards. Both builds use the
same processes (--jobs, default 2) and files, and must give bit-identical notes (checked). Prints one
line per measurement and a JSON line last. The machine is shared: check `uptime` and run it when others
are quiet.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from musicrnn.data.cache import build_or_load  # noqa: E402

DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "maestro-v2.0.0"


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the parse workers)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def _build(root: Path, jobs: int, fast: bool, folder: Path, sustain: bool):
    load1 = os.getloadavg()[0]
    c0, t0 = _cpu(), time.perf_counter()
    cache = build_or_load(root, jobs=jobs, progress=sys.stderr.isatty(), cache_folder=folder, verbose=False,
                          fast=fast, sustain=sustain)
    return cache, time.perf_counter() - t0, load1, _cpu() - c0


def _same(a, b) -> bool:
    return ([f.path for f in a.files] == [f.path for f in b.files] and a.damaged == b.damaged
            and all(getattr(a, k).tobytes() == getattr(b, k).tobytes() and getattr(a, k).dtype == getattr(b, k).dtype
                    for k in ("offsets", "pitch", "start", "end", "velocity")))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("root", nargs="?", default=str(DEFAULT_ROOT))
    p.add_argument("--jobs", type=int, default=2, help="parse processes for both builds (default 2)")
    p.add_argument("--loads", type=int, default=5, help="how many cache loads to time")
    p.add_argument("--sustain", action="store_true", help="build with the sustain pedal applied")
    p.add_argument("--no-pretty-midi", dest="pretty", action="store_false",
                   help="skip the pretty_midi-only build (minutes)")
    args = p.parse_args()
    root = Path(args.root)
    if not root.is_dir():
        sys.exit(f"error: {root} is not a folder — pass the MAESTRO folder as ROOT")

    folders = [Path(tempfile.mkdtemp(prefix="musicrnn-bench-cache-")) for _ in range(2)]
    try:
        cache, build_s, load1, cpu = _build(root, args.jobs, True, folders[0], args.sustain)
        stats = cache.stats()
        loads = []
        for _ in range(args.loads):
            t0 = time.perf_counter()
            again = build_or_load(root, progress=False, cache_folder=folders[0], verbose=False, sustain=args.sustain)
            loads.append(time.perf_counter() - t0)
            assert again.path == cache.path
        size_mb = cache.path.stat().st_size / 1e6
        pm_s = pm_load1 = pm_cpu = same = None
        if args.pretty:
            pm, pm_s, pm_load1, pm_cpu = _build(root, args.jobs, False, folders[1], args.sustain)
            same = _same(cache, pm)
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    why: dict[str, int] = {}
    for _, reason in cache.fallbacks:
        why[reason] = why.get(reason, 0) + 1
    print(f"root: {root}")
    print(f"files: {stats['files']} intact, {stats['damaged']} damaged; notes: {stats['notes']:,}; "
          f"cache file {size_mb:.1f} MB")
    print(f"cache build, fast reader (jobs={args.jobs}): {build_s:.1f} s ({cpu:.1f} CPU-s); "
          f"{len(cache.fallbacks)} of {stats['files']} files fell back to pretty_midi {why or ''}"
          f"(load average at start {load1:.2f} on {os.cpu_count()} cores)")
    if args.pretty:
        print(f"cache build, pretty_midi only (jobs={args.jobs}): {pm_s:.1f} s ({pm_cpu:.1f} CPU-s) "
              f"(load average at start {pm_load1:.2f}); speed-up {pm_s / build_s:.1f}x; "
              f"notes bit-identical: {same}")
    print(f"cache load: median {statistics.median(loads) * 1000:.0f} ms, min {min(loads) * 1000:.0f} ms "
          f"over {len(loads)} loads (includes listing and stat-ing every file for the key)")
    print(json.dumps({"root": str(root), "files": stats["files"], "damaged": stats["damaged"],
                      "notes": stats["notes"], "jobs": args.jobs, "sustain": args.sustain,
                      "build_s": round(build_s, 2), "build_cpu_s": round(cpu, 1), "fallbacks": len(cache.fallbacks),
                      "fallback_reasons": why,
                      "pretty_midi_build_s": None if pm_s is None else round(pm_s, 2),
                      "pretty_midi_cpu_s": None if pm_cpu is None else round(pm_cpu, 1), "identical": same,
                      "load_median_s": round(statistics.median(loads), 4), "load_min_s": round(min(loads), 4),
                      "cache_mb": round(size_mb, 1), "loadavg_start": round(load1, 2)}))
    if same is False:
        sys.exit("error: the fast reader's notes differ from pretty_midi's")


if __name__ == "__main__":
    main()
