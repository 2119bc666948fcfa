"""The full MAESTRO v2.0.0 at ../shared/data: exact file and note counts, and repair of the damaged files.

Building the cache parses all 1282 files (~1-2 minutes on 2 cores), so these are ``slow``; they still run
in CI. They skip cleanly where the dataset is absent (``maestro_root`` fixture, ``maestro`` marker).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from musicrnn.data.cache import NoteCache, build_or_load, damaged_report_path

pytestmark = [pytest.mark.maestro, pytest.mark.slow]

EXPECTED = {
    "files": 973, "damaged": 309, "notes": 4_449_572,
    "train": {"files": 717, "notes": 3_484_723},
    "validation": {"files": 107, "notes": 397_293},
    "test": {"files": 149, "notes": 567_556},
}
ALL_FILES = 1282


@pytest.fixture(scope="module")
def maestro_cache(maestro_root: Path) -> NoteCache:
    """The note cache of the full dataset, in the session's private cache folder (built once)."""
    return build_or_load(maestro_root, progress=False)


def test_cache_counts(maestro_cache: NoteCache, maestro_root: Path):
    stats = maestro_cache.stats()
    assert {k: stats[k] for k in EXPECTED} == EXPECTED
    assert len(maestro_cache.files) + len(maestro_cache.damaged) == ALL_FILES
    # every damaged file (line-ending damage: a track chunk too short) is reported with its reason
    report = json.loads(damaged_report_path(maestro_cache.path).read_text())
    assert len(report) == 309
    assert sorted(r["file"] for r in report) == sorted(p for p, _ in maestro_cache.damaged)
    unclear = [r for r in report if r["file"] not in r["reason"] or "repair" not in r["reason"]]
    assert not unclear, unclear[:3]  # each reason names the file and the fix
    # the cache lies in $MUSICRNN_CACHE, never beside the (read-only) data
    assert Path(os.environ["MUSICRNN_CACHE"]) in maestro_cache.path.parents
    assert not any(p.suffix == ".npz" for p in maestro_root.rglob("*.npz"))


def test_cache_is_reused_not_rebuilt(maestro_cache: NoteCache, maestro_root: Path):
    # How fast it loads is benchmarks/data_cache.py's job (0.1-0.2 s here), not a unit test's.
    mtime = maestro_cache.path.stat().st_mtime_ns
    again = build_or_load(maestro_root, progress=False)
    assert again.path == maestro_cache.path and again.path.stat().st_mtime_ns == mtime
    assert int(again.offsets[-1]) == EXPECTED["notes"]


def test_repair_then_all_files_load(maestro_cache: NoteCache, maestro_root: Path, tmp_path: Path):
    from musicrnn.midi.tree import repair_tree

    dst = tmp_path / "repaired"
    report = repair_tree(maestro_root, dst, progress=False)
    assert (report["files"], report["repaired"], report["unrepairable"]) == (ALL_FILES, 309, 0), \
        report.get("unrepairable_files", [])[:3]
    damaged = sorted(p for p, _ in maestro_cache.damaged)
    missing = [p for p in damaged if not (dst / p).is_file()]
    assert not missing, f"{len(missing)} damaged files have no repaired copy, e.g. {missing[:3]}"
    # intact files are copied to DST byte-identical: repair never changes good data
    for f in maestro_cache.files[::50]:
        copy = dst / f.path
        assert copy.is_file(), f.path
        assert copy.read_bytes() == (maestro_root / f.path).read_bytes(), f.path
    # the 973 intact files load (above); now the 309 repaired copies must load through the same
    # checked, parallel path: gather them (links, not copies) in a folder of their own and build it.
    check = tmp_path / "check"
    for p in damaged:
        link = check / p
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(dst / p)
    cache = build_or_load(check, progress=False, cache_folder=tmp_path / "cache")
    assert cache.damaged == [], cache.damaged[:3]
    assert len(cache.files) + len(maestro_cache.files) == ALL_FILES
    assert int(cache.offsets[-1]) > 1_000_000  # roughly a quarter of MAESTRO's notes came back
