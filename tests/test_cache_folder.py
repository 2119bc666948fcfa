"""The note cache: an unwritable cache folder is one line in every CLI; unsound cache contents are
rebuilt with one line saying why; the skipped-files line is printed on a cache hit too."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_checks import TINY, exit_code, one_error, readonly_folder, snapshot
from musicrnn.cli import data as data_cli
from musicrnn.cli import evaluate as evaluate_cli
from musicrnn.cli import fit
from musicrnn.cli import sample as sample_cli
from musicrnn.data.cache import SAMPLE_ROOT, _load, build_or_load, list_files

SAMPLE_FILES = sorted(SAMPLE_ROOT.rglob("*.midi"))


@pytest.mark.parametrize("how", ["env", "env_subfolder", "flag"])
def test_unwritable_cache_folder_in_fit(run_dir, tmp_path, capsys, monkeypatch, how):
    with readonly_folder(tmp_path / "ro") as ro:
        args = [*TINY, "--trainer.max_steps", "1"]
        if how == "flag":
            args += ["--data.cache_dir", str(ro)]
        else:
            monkeypatch.setenv("MUSICRNN_CACHE", str(ro / "sub" if how == "env_subfolder" else ro))
        code = exit_code(fit.main, args)
        one_error(capsys, code, f"cache folder {ro}", "not writable", "set MUSICRNN_CACHE")
        assert list(run_dir.iterdir()) == [] and list(ro.iterdir()) == []


def test_unwritable_cache_folder_in_data_stats_sample_and_evaluate(run_dir, tmp_path, capsys, monkeypatch, tiny_ckpt):
    (run_dir / "keep.txt").write_text("earlier output")
    before = snapshot(run_dir)
    with readonly_folder(tmp_path / "ro") as ro:
        monkeypatch.setenv("MUSICRNN_CACHE", str(ro))
        for fn, args in ((data_cli.main, ["stats"]),
                         (sample_cli.main, ["--ckpt", str(tiny_ckpt), "--num-notes", "5", "--out", "out.mid"]),
                         (evaluate_cli.main, ["--ckpt", str(tiny_ckpt), "--samples", "1", "--num-notes", "5"])):
            code = exit_code(fn, args)
            one_error(capsys, code, f"cache folder {ro}", "not writable", "set MUSICRNN_CACHE")
            assert snapshot(run_dir) == before
        assert list(ro.iterdir()) == []


CORRUPTIONS = {
    "pitch 200": (lambda a: {**a, "pitch": np.where(np.arange(len(a["pitch"])) == 5, 200, a["pitch"])
                             .astype(a["pitch"].dtype)}, "pitch outside 0..127"),
    "unequal lengths": (lambda a: {**a, "end": a["end"][:-3]}, "unequal lengths"),
    "NaN starts": (lambda a: {**a, "start": np.where(np.arange(len(a["start"])) == 7, np.nan, a["start"])},
                   "not finite"),
    "offsets x3": (lambda a: {**a, "offsets": a["offsets"] * 3}, "offsets do not add up"),
}


@pytest.fixture
def small_data(tmp_path, monkeypatch) -> Path:
    """Two bundled files plus one text file named .mid, and a private cache folder."""
    folder = tmp_path / "data"
    folder.mkdir()
    for p in SAMPLE_FILES[:2]:
        shutil.copy(p, folder / p.name)
    (folder / "readme.mid").write_text("not MIDI")
    monkeypatch.setenv("MUSICRNN_CACHE", str(tmp_path / "cache"))
    return folder


def _stats(folder: Path, capsys) -> tuple[dict, list[str]]:
    data_cli.main(["stats", str(folder), "--jobs", "1"])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return json.loads(out.out.strip().splitlines()[-1]), [x for x in out.err.splitlines() if x.strip()]


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_unsound_cache_is_rebuilt_with_one_line_saying_why(small_data, capsys, name):
    good, _ = _stats(small_data, capsys)
    [path] = (Path(os.environ["MUSICRNN_CACHE"]) / "notes").glob("notes-*.npz")
    original = path.read_bytes()
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    mutate, why = CORRUPTIONS[name]
    with open(path, "wb") as f:
        np.savez(f, **mutate(arrays))
    stats, err = _stats(small_data, capsys)
    assert stats == good
    unusable = [x for x in err if "ignoring unreadable cache" in x]
    assert len(unusable) == 1 and why in unusable[0] and "rebuilding" in unusable[0], err
    assert path.read_bytes() == original  # rebuilt to the same bytes


def test_load_checks_the_cache_against_the_files_it_is_given(small_data, capsys):
    cache = build_or_load(small_data, progress=False, jobs=1, verbose=False)
    files = list_files(small_data)
    assert [f.path for f in _load(cache.path, small_data, files).files] == [f.path for f in cache.files]
    with pytest.raises(ValueError, match="file list does not match"):
        _load(cache.path, small_data, files[:1])


def test_skipped_files_line_is_printed_on_a_cache_hit_too(small_data, capsys):
    for _ in range(2):  # build, then hit
        _, err = _stats(small_data, capsys)
        skipped = [x for x in err if "skipped 1 file it could not use" in x]
        assert len(skipped) == 1 and "not MIDI" in skipped[0] and "repair" not in skipped[0], err
