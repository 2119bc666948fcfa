"""Repair of a folder: a repaired copy of every MIDI file of a tree (in parallel), with a report."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import MidiError
from .check import MIDI_SUFFIXES, files_under
from .repair import repair_bytes

METADATA_SUFFIXES = {".csv", ".json"}


def _repair_file(task: tuple[str, str, str, float | None]) -> tuple[str, str, str]:
    """Repair one file into place: (relative path, "intact" | "repaired" | "unrepairable", reason)."""
    from musicrnn.io_utils import atomic_write

    src, dst, rel, duration = task
    try:
        data = Path(src).read_bytes()
        fixed = repair_bytes(data, duration, rel)
    except MidiError as e:
        return rel, "unrepairable", str(e)
    except OSError as e:
        return rel, "unrepairable", f"{rel}: cannot be read ({e.strerror})"
    with atomic_write(dst) as f:
        f.write(fixed)
    return rel, "intact" if fixed is data else "repaired", ""


def _durations(src: Path) -> dict[str, float]:
    """MAESTRO's expected durations by relative MIDI path, from ``maestro-v2.0.0.csv`` if present."""
    import csv

    path = src / "maestro-v2.0.0.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["midi_filename"]: float(r["duration"]) for r in csv.DictReader(f) if r.get("duration")}


def repair_tree(src: Path, dst: Path, progress: bool = True, jobs: int = 2) -> dict:
    """Write a repaired copy of every MIDI file under ``src`` to the same relative path under ``dst``.

    Intact files are copied as they are, damaged ones repaired (``repair_bytes``, with MAESTRO's
    CSV durations when the CSV is there), unrepairable ones left out and listed with the reason.
    Metadata (.csv/.json) and LICENSE/README files are copied too. Folders that cannot be read are
    named on stderr and in the report. ``src`` is only read; every write is atomic. Returns the report, also
    written to ``dst/repair_report.json``.
    """
    import json
    import shutil

    from musicrnn.errors import ConfigError
    from musicrnn.io_utils import atomic_write

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise ConfigError(f"repair source {src} is not a folder — pass the MAESTRO folder as SRC")
    s, d = src.resolve(), dst.resolve()
    if d == s or s in d.parents:
        raise ConfigError(f"repair destination {dst} is inside the source {src} — choose a folder outside it")
    files, unreadable = files_under(src)
    for line in unreadable:
        print(f"warning: {line}", file=sys.stderr)
    durations = _durations(src)
    tasks = []
    for p in files:
        rel = p.relative_to(src).as_posix()
        if p.suffix.lower() in MIDI_SUFFIXES:
            tasks.append((str(p), str(dst / rel), rel, durations.get(rel)))
        elif p.suffix.lower() in METADATA_SUFFIXES or p.name.upper().startswith(("LICENSE", "README")):
            if rel != "repair_report.json":
                with atomic_write(dst / rel) as f, open(p, "rb") as g:
                    shutil.copyfileobj(g, f)
    results = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="repair", unit="file", file=sys.stderr)
    if jobs > 1 and len(tasks) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(jobs, len(tasks))) as pool:
            for r in pool.imap_unordered(_repair_file, tasks, chunksize=4):
                results.append(r)
                bar and bar.update()
    else:
        for t in tasks:
            results.append(_repair_file(t))
            bar and bar.update()
    if bar is not None:
        bar.close()
    results.sort()
    status = [r[1] for r in results]
    report = {
        "files": len(results),
        "intact": status.count("intact"),
        "repaired": status.count("repaired"),
        "unrepairable": status.count("unrepairable"),
        "unrepairable_files": [{"file": rel, "reason": why} for rel, st, why in results if st == "unrepairable"],
        "unreadable_folders": unreadable,
    }
    with atomic_write(dst / "repair_report.json", "w") as f:
        json.dump(report, f, indent=2)
    return report
