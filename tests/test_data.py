"""Tests of the note cache and ``MaestroDataModule``: windows, split, augmentation, cache keying, CLI."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from musicrnn.data.cache import SAMPLE_ROOT, FileInfo, NoteCache, build_or_load, damaged_report_path, list_files
from musicrnn.data.datamodule import MaestroDataModule, WindowDataset, note_features
from musicrnn.errors import ConfigError
from musicrnn.notes import PIANO_HIGH, PIANO_LOW, Notes

REPO = Path(__file__).resolve().parent.parent


# ---- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_cache_dir(tmp_path_factory) -> Path:
    """One cache folder for the bundled sample, shared by this module's tests (built once)."""
    folder = tmp_path_factory.mktemp("sample-cache")
    build_or_load(SAMPLE_ROOT, jobs=1, progress=False, cache_folder=folder, verbose=False)
    return folder


@pytest.fixture(scope="module")
def sample_dm(sample_cache_dir) -> MaestroDataModule:
    dm = MaestroDataModule(seq_length=25, batch_size=32, cache_dir=str(sample_cache_dir), jobs=1)
    dm.setup("fit")
    return dm


def write_folder(root: Path, n_files: int, notes_per_file: int = 40) -> Path:
    """A folder of small synthetic MIDI files (no CSV): a user's own collection."""
    rng = np.random.default_rng(0)
    for k in range(n_files):
        starts = np.cumsum(rng.uniform(0.05, 0.3, notes_per_file))
        n = Notes.from_arrays(rng.integers(40, 90, notes_per_file), starts, starts + 0.2,
                              rng.integers(30, 110, notes_per_file))
        sub = root / f"set{k % 3}"
        n.to_midi(sub / f"piece{k:02d}.mid")
    return root


def toy_cache(lengths: list[int]) -> NoteCache:
    """A cache-like object: file k has ``lengths[k]`` notes, velocity 10*(k+1), pitch 30 + index in file."""
    pitch, start, vel, offsets = [], [], [], [0]
    for k, n in enumerate(lengths):
        pitch.append(30 + np.arange(n))
        start.append(np.arange(n) * 0.5)
        vel.append(np.full(n, 10 * (k + 1)))
        offsets.append(offsets[-1] + n)
    start = np.concatenate(start)
    return NoteCache(Path("."), [FileInfo(f"f{k}.mid", "train", f"c{k}") for k in range(len(lengths))],
                     np.array(offsets, np.int64), np.concatenate(pitch).astype(np.int16), start, start + 0.25,
                     np.concatenate(vel).astype(np.int16), damaged=[])


def expected_windows(lengths, seq_length: int, stride: int = 1) -> int:
    return sum(max(0, math.ceil((n - seq_length) / stride)) for n in lengths)


# ---- windows -------------------------------------------------------------------------------------
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_windows_never_cross_file_boundaries(stride):
    lengths = [7, 5, 3, 9]  # the 3-note file is shorter than seq_length + 1: no windows
    cache = toy_cache(lengths)
    feats, offs = note_features(cache, list(range(len(lengths))))
    assert feats.shape == (sum(lengths), 4) and offs.tolist() == [0, 7, 12, 15, 24]
    assert (feats[offs[:-1], 1] == 0).all()  # every file's first step is 0, not a jump from the last file
    ds = WindowDataset(feats, offs, np.array([3, 5, 7, 9]), seq_length=3, stride=stride)
    assert len(ds) == expected_windows(lengths, 3, stride)
    seen_starts = {k: [] for k in range(len(lengths))}
    for i in range(len(ds)):
        w, composer = ds[i]
        assert w.shape == (4, 4)
        file_ids = set((w[:, 3] / 10 - 1).long().tolist())
        assert len(file_ids) == 1, f"window {i} mixes files {file_ids}"
        k = file_ids.pop()
        assert int(composer) == [3, 5, 7, 9][k]
        assert torch.equal(w[:, 0], w[0, 0] + torch.arange(4.0))  # consecutive notes of that file
        seen_starts[k].append(int(w[0, 0]) - 30)
    assert seen_starts == {0: list(range(0, 4, stride)), 1: list(range(0, 2, stride)), 2: [],
                           3: list(range(0, 6, stride))}


@pytest.mark.parametrize("seq_length,stride", [(25, 1), (25, 4), (50, 7), (100, 1)])
def test_window_count_formula_on_sample(sample_cache_dir, seq_length, stride):
    dm = MaestroDataModule(seq_length=seq_length, stride=stride, cache_dir=str(sample_cache_dir), jobs=1)
    dm.setup("fit")
    cache = build_or_load(SAMPLE_ROOT, progress=False, cache_folder=sample_cache_dir, verbose=False)
    counts = np.diff(cache.offsets)
    for split in ("train", "validation", "test"):
        lengths = [int(counts[k]) for k, f in enumerate(cache.files) if f.split == split]
        assert len(dm.datasets[split]) == expected_windows(lengths, seq_length, stride), split
    w, composer = dm.datasets["train"][0]
    assert w.shape == (seq_length + 1, 4) and w.dtype == torch.float32 and composer.dtype == torch.int64


def test_sample_split_and_composers(sample_dm):
    cache = build_or_load(SAMPLE_ROOT, progress=False, cache_folder=sample_dm.hparams.cache_dir, verbose=False)
    assert [sum(f.split == s for f in cache.files) for s in ("train", "validation", "test")] == [6, 2, 2]
    assert sample_dm.composers[0] == "<unknown>" and len(sample_dm.composers) > 2
    assert all(0 < len(sample_dm.datasets[s]) for s in ("train", "validation", "test"))


def test_train_windows_per_epoch_bounds_an_epoch(sample_cache_dir):
    dm = MaestroDataModule(batch_size=32, train_windows_per_epoch=100, cache_dir=str(sample_cache_dir), jobs=1)
    dm.setup("fit")
    assert len(dm.datasets["train"]) > 10_000
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(loader) == len(batches) == math.ceil(100 / 32)
    assert sum(len(b[0]) for b in batches) == 100
    first = torch.cat([b[0][:, 0, :] for b in batches])
    second = torch.cat([b[0][:, 0, :] for b in dm.train_dataloader()])
    assert not torch.equal(first, second)  # a fresh random draw each epoch


def test_val_windows_fixed_seeded_subset(sample_cache_dir):
    def val_batches(seed):
        dm = MaestroDataModule(batch_size=16, val_windows=50, seed=seed, cache_dir=str(sample_cache_dir), jobs=1)
        dm.setup("fit")
        loader = dm.val_dataloader()
        assert len(loader.dataset) == 50 and len(dm.test_dataloader().dataset) == 50
        return torch.cat([b[0] for b in loader])

    a, b = val_batches(0), val_batches(0)
    assert a.shape == (50, 26, 4) and torch.equal(a, b)
    assert torch.equal(a, val_batches(0)) and not torch.equal(a, val_batches(1))


def test_transpose_only_on_train_and_stays_on_piano(sample_cache_dir):
    torch.manual_seed(0)
    dm = MaestroDataModule(transpose=12, cache_dir=str(sample_cache_dir), jobs=1)
    dm.setup("fit")
    train = dm.datasets["train"]
    shifts = set()
    for i in torch.randint(len(train), (300,)).tolist():
        w, _ = train[i]
        s = int(train.starts[i])
        raw = train.features[s : s + 26]
        assert PIANO_LOW <= int(w[:, 0].min()) and int(w[:, 0].max()) <= PIANO_HIGH
        shift = w[:, 0] - raw[:, 0]
        assert (shift == shift[0]).all() and abs(int(shift[0])) <= 12  # the whole window, by one amount
        assert torch.equal(w[:, 1:], raw[:, 1:])  # timing and velocity untouched
        shifts.add(int(shift[0]))
    assert len(shifts) > 10  # many different shifts, not one
    for split in ("validation", "test"):
        ds = dm.datasets[split]
        assert ds.transpose == 0
        for i in range(0, len(ds), max(1, len(ds) // 50)):
            s = int(ds.starts[i])
            assert torch.equal(ds[i][0], ds.features[s : s + 26])


def test_bad_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="seq_length"):
        MaestroDataModule(seq_length=0)
    with pytest.raises(ConfigError, match="stride"):
        MaestroDataModule(stride=0)
    with pytest.raises(ConfigError, match="does not exist"):
        MaestroDataModule(root=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no MIDI files"):
        MaestroDataModule(root=str(tmp_path / "empty"))


# ---- split of a folder without a CSV -------------------------------------------------------------
def test_seeded_split_of_a_plain_folder(tmp_path):
    root = write_folder(tmp_path / "mine", 20)
    files = list_files(root, seed=0)
    splits = [f.split for f in files]
    assert (splits.count("train"), splits.count("validation"), splits.count("test")) == (18, 2, 0)
    assert files == list_files(root, seed=0)  # seeded: the same split every time
    val_sets = {tuple(f.path for f in list_files(root, seed=s) if f.split == "validation") for s in range(6)}
    assert len(val_sets) > 1  # the seed chooses the split
    for seed in (0, 3):
        dm = MaestroDataModule(root=str(root), seq_length=10, seed=seed, cache_dir=str(tmp_path / "c"), jobs=1)
        dm.setup("fit")
        cache = dm._cache(progress=False)
        assert [(f.path, f.split) for f in cache.files] == [(f.path, f.split) for f in list_files(root, seed)]
        assert len(dm.datasets["train"]) == 18 * 30 and len(dm.datasets["validation"]) == 2 * 30
        assert len(dm.datasets["test"]) == 0 and dm.val_dataloader() is not None
        with pytest.raises(ConfigError, match="no test split"):
            dm.test_dataloader()


# ---- the cache -----------------------------------------------------------------------------------
def cache_equal(a: NoteCache, b: NoteCache) -> bool:
    return (all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("offsets", "pitch", "start", "end",
                                                                     "velocity"))
            and a.files == b.files and [tuple(d) for d in a.damaged] == [tuple(d) for d in b.damaged])


def test_cache_second_load_is_identical(tmp_path):
    root = write_folder(tmp_path / "mine", 12)
    folder = tmp_path / "cache"
    first = build_or_load(root, jobs=1, progress=False, cache_folder=folder, verbose=False)
    assert first.path.exists() and first.path.parent == folder
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # atomic: no temp left
    mtime = first.path.stat().st_mtime_ns
    second = build_or_load(root, jobs=1, progress=False, cache_folder=folder, verbose=False)
    assert second.path == first.path and second.path.stat().st_mtime_ns == mtime  # loaded, not rebuilt
    assert cache_equal(first, second)
    assert int(first.offsets[-1]) == 12 * 40 and len(first.files) == 12
    # the cache holds exactly what Notes.from_midi reads
    n = Notes.from_midi(root / first.files[5].path)
    got = first.notes(5)
    assert np.array_equal(n.pitch, got.pitch) and np.array_equal(n.start, got.start)


def test_cache_key_changes_with_options_and_files(tmp_path):
    root = write_folder(tmp_path / "mine", 6)
    folder = tmp_path / "cache"
    kw = dict(jobs=1, progress=False, cache_folder=folder, verbose=False)
    base = build_or_load(root, **kw).path
    assert build_or_load(root, sustain=True, **kw).path != base  # another option
    assert build_or_load(root, seed=1, **kw).path != base  # another split
    extra = write_folder(tmp_path / "more", 1)
    (root / "new.mid").write_bytes((extra / "set0" / "piece00.mid").read_bytes())  # another file list
    grown = build_or_load(root, **kw)
    assert grown.path != base and len(grown.files) == 7
    (root / "new.mid").unlink()
    assert build_or_load(root, **kw).path == base  # back to the first list: the first cache again
    os.utime(root / "set0" / "piece00.mid", ns=(1, 1))  # a file changed (mtime): rebuilt
    assert build_or_load(root, **kw).path != base


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_cache_is_ignored_and_rebuilt(tmp_path, damage, capsys):
    root = write_folder(tmp_path / "mine", 5)
    folder = tmp_path / "cache"
    kw = dict(jobs=1, progress=False, cache_folder=folder, verbose=False)
    good = build_or_load(root, **kw)
    data = good.path.read_bytes()
    bad = {"garbage": os.urandom(5000), "truncated": data[: len(data) // 2], "empty": b""}[damage]
    good.path.write_bytes(bad)
    rebuilt = build_or_load(root, **kw)
    assert "ignoring unreadable cache" in capsys.readouterr().err
    assert cache_equal(good, rebuilt)
    assert rebuilt.path.read_bytes() != bad  # rewritten
    assert cache_equal(good, build_or_load(root, **kw))


def test_damaged_files_are_excluded_and_reported(tmp_path, capsys):
    root = write_folder(tmp_path / "mine", 4)
    victim = root / "set1" / "piece01.mid"
    victim.write_bytes(victim.read_bytes()[:-2])  # cut off: no 0x0A bytes that could have lost a 0x0D
    (root / "notes.mid").write_bytes(b"this is not MIDI")
    cache = build_or_load(root, jobs=1, progress=False, cache_folder=tmp_path / "cache")
    assert len(cache.files) == 3 and sorted(p for p, _ in cache.damaged) == ["notes.mid", "set1/piece01.mid"]
    err = capsys.readouterr().err
    assert "skipped 2 files it could not use" in err and "1 truncated" in err and "1 not MIDI" in err
    assert "repair" not in err  # repair only puts lost 0x0D bytes back: it cannot help these two
    report = json.loads(damaged_report_path(cache.path).read_text())
    assert {r["file"] for r in report} == {"notes.mid", "set1/piece01.mid"}
    assert any("cut off 2 bytes" in r["reason"] for r in report) and all(r["reason"] for r in report)


def test_all_damaged_is_a_config_error(tmp_path):
    (tmp_path / "a.mid").write_bytes(b"MThd")
    with pytest.raises(ConfigError, match="none of its 1 MIDI files"):
        build_or_load(tmp_path, jobs=1, progress=False, cache_folder=tmp_path / "cache")


def test_parallel_build_matches_serial(tmp_path):
    root = write_folder(tmp_path / "mine", 10)
    serial = build_or_load(root, jobs=1, progress=False, cache_folder=tmp_path / "a", verbose=False)
    parallel = build_or_load(root, jobs=2, progress=False, cache_folder=tmp_path / "b", verbose=False)
    assert cache_equal(serial, parallel)


# ---- CLI -----------------------------------------------------------------------------------------
def run_cli(*args, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUSICRNN_CACHE": str(cache)}
    env.pop("MUSICRNN_DATA", None)
    return subprocess.run([sys.executable, "-m", "musicrnn.data", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_stats_cli_prints_json_last(tmp_path):
    r = run_cli("stats", "--jobs", "1", cache=tmp_path)
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    assert stats["files"] == 10 and stats["damaged"] == 0
    assert [stats[s]["files"] for s in ("train", "validation", "test")] == [6, 2, 2]
    assert stats["notes"] == sum(stats[s]["notes"] for s in ("train", "validation", "test")) > 30_000
    assert list((tmp_path / "notes").glob("notes-*.npz"))  # the cache went to $MUSICRNN_CACHE


def test_stats_cli_missing_folder_is_one_line_error(tmp_path):
    r = run_cli("stats", str(tmp_path / "nowhere"), cache=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    assert "--data.root" in r.stderr
