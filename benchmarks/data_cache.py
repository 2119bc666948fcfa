"""Note-cache benchmark: first build (parse every file) and later loads, for a whole MIDI folder.

    python benchmarks/data_cache.py [ROOT] [--jobs N] [--loads K]

ROOT defaults to ../shared/data/maestro-v2.0.0 (beside the repo). The build goes to a fresh temp cache
folder, so it always measures a real first run; the folder is deleted afterwards. Prints one line per
measurement and a JSON line last. The machine is shared: check `uptime` and run it when others are quiet.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from musicrnn.data.cache import build_or_load  # noqa: E402

DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "maestro-v2.0.0"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("root", nargs="?", default=str(DEFAULT_ROOT))
    p.add_argument("--jobs", type=int, default=None, help="parse processes (default: all cores)")
    p.add_argument("--loads", type=int, default=5, help="how many cache loads to time")
    args = p.parse_args()
    root = Path(args.root)
    if not root.is_dir():
        sys.exit(f"error: {root} is not a folder — pass the MAESTRO folder as ROOT")

    folder = Path(tempfile.mkdtemp(prefix="musicrnn-bench-cache-"))
    try:
        load1 = os.getloadavg()[0]
        t0 = time.perf_counter()
        cache = build_or_load(root, jobs=args.jobs, progress=sys.stderr.isatty(), cache_folder=folder, verbose=False)
        build_s = time.perf_counter() - t0
        stats = cache.stats()
        loads = []
        for _ in range(args.loads):
            t0 = time.perf_counter()
            again = build_or_load(root, progress=False, cache_folder=folder, verbose=False)
            loads.append(time.perf_counter() - t0)
            assert again.path == cache.path
        size_mb = cache.path.stat().st_size / 1e6
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"root: {root}")
    print(f"files: {stats['files']} intact, {stats['damaged']} damaged; notes: {stats['notes']:,}; "
          f"cache file {size_mb:.1f} MB")
    print(f"cache build (first run, jobs={args.jobs or os.cpu_count()}): {build_s:.1f} s "
          f"(load average at start {load1:.2f} on {os.cpu_count()} cores)")
    print(f"cache load: median {statistics.median(loads) * 1000:.0f} ms, min {min(loads) * 1000:.0f} ms "
          f"over {len(loads)} loads (includes listing and stat-ing every file for the key)")
    print(json.dumps({"root": str(root), "files": stats["files"], "damaged": stats["damaged"],
                      "notes": stats["notes"], "build_s": round(build_s, 2),
                      "load_median_s": round(statistics.median(loads), 4), "load_min_s": round(min(loads), 4),
                      "cache_mb": round(size_mb, 1), "loadavg_start": round(load1, 2)}))


if __name__ == "__main__":
    main()
