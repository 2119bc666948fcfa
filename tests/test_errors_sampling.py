"""Issue 11, sampling side: write errors name the real file and keep nothing (8), bounded memory per
generated note (10), ``--temperature inf`` (11).

Each failure asserts: exit code 2, exactly one ``error:`` line naming the thing and the fix, no
traceback, and every file already in the output folder byte-identical afterwards. Disk-full and
read-only cases use a small tmpfs (needs root and ``mount``; skipped cleanly otherwise).
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from helpers import MAESTRO_FILE, pretty_midi_bytes
from musicrnn.cli.sample import main
from musicrnn.notes import Notes
from musicrnn.sampling import generator as G
from musicrnn.midi import write as midiwrite
from musicrnn.sampling.notebuffer import NoteBuffer
from musicrnn.sampling.primes import prime_bundled


@pytest.fixture
def in_run(tiny_ckpt, monkeypatch):
    """Reuse the note cache train_tiny built, so the default (bundled) prime needs no parsing."""
    monkeypatch.setenv("MUSICRNN_CACHE", str(tiny_ckpt.parent / "cache"))
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)
    return tiny_ckpt


def refused(argv: list[str], capsys, *match: str) -> str:
    """Exit 2, stderr is exactly one ``error:`` line (no traceback, no progress) containing ``match``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    io_ = capsys.readouterr()
    err = io_.err.strip().splitlines()
    err = [line for line in err if not line.startswith(("prime:", "using checkpoint", "seed ", "musicrnn: parsed"))]
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in io_.err and "wrote" not in io_.out
    for m in match:
        assert m in err[0], err[0]
    return err[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def tmpfs(tmp_path):
    """A 600 KB tmpfs (root only); unmounted in teardown."""
    d = tmp_path / "small"
    d.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def fill(folder: Path, leave: int) -> None:
    """Write a filler file so that about ``leave`` bytes stay free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler.bin", "wb") as f:
        f.write(b"\0" * max(free - leave, 0))


@pytest.fixture
def no_generation(monkeypatch):
    """Fail the test if generation starts: the check must come before it."""
    def boom(*a, **k):
        raise AssertionError("generation started before the output folder was checked")
    monkeypatch.setattr(G, "generate_with", boom)


# ---- 8: write errors -----------------------------------------------------------------------------------
def test_full_disk_png_names_png_and_keeps_nothing(in_run, tmpfs, capsys):
    pytest.importorskip("matplotlib")
    out = tmpfs / "out.mid"
    Notes.from_midi(MAESTRO_FILE)[:20].to_midi(out)  # an earlier run's output of the same name
    fill(tmpfs, 8 * 1024)  # room for the MIDI (one page), not for the PNG
    before = snapshot(tmpfs)
    line = refused(["--ckpt", str(in_run), "--num-notes", "50", "--seed", "0", "--png", "--out", str(out)],
                   capsys, f"cannot write {tmpfs / 'out.png'}", "No space left", "choose another --out")
    assert ".tmp" not in line
    assert snapshot(tmpfs) == before  # the earlier out.mid intact, no new MIDI, no temp files left
    assert sorted(os.listdir(tmpfs)) == sorted(before)


def test_full_disk_is_found_before_generating(in_run, tmpfs, capsys, no_generation):
    (tmpfs / "keep.mid").write_bytes(b"earlier")
    before = snapshot(tmpfs)
    refused(["--ckpt", str(in_run), "--num-notes", "10000000", "--seed", "0", "--out", str(tmpfs / "big.mid")],
            capsys, str(tmpfs), "free", "needs up to", "choose another --out")
    assert snapshot(tmpfs) == before and sorted(os.listdir(tmpfs)) == sorted(before)


def test_read_only_folder_is_found_before_generating(in_run, tmpfs, capsys, no_generation):
    (tmpfs / "keep.mid").write_bytes(b"earlier")
    before = snapshot(tmpfs)
    if subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True).returncode != 0:
        pytest.skip("cannot remount read-only")
    line = refused(["--ckpt", str(in_run), "--num-notes", "100", "--out", str(tmpfs / "x.mid")],
                   capsys, f"cannot write in {tmpfs}", "Read-only file system", "choose another --out")
    assert ".tmp" not in line
    assert snapshot(tmpfs) == before


def test_all_outputs_or_none_on_success(in_run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "o" / "s.mid"
    main(["--ckpt", str(in_run), "--num-notes", "30", "--seed", "0", "--num-samples", "2", "--png", "--out", str(out)])
    names = sorted(os.listdir(out.parent))
    assert names == ["s_0.mid", "s_0.png", "s_1.mid", "s_1.png"]  # no temp or probe files left
    assert capsys.readouterr().out.count("wrote ") == 4


# ---- 10: memory per note and the MIDI writer ------------------------------------------------------------
def test_midi_writer_bytes_equal_pretty_midi(monkeypatch):
    rng = np.random.default_rng(0)
    n = 3000
    start = np.cumsum(rng.choice([0, 0, 0.0001, 0.01, 0.3, 5.0, 40.0], n))  # ties, sub-tick and long gaps
    cases = [Notes.from_midi(MAESTRO_FILE)[:2000], Notes.empty(),
             Notes.from_arrays(rng.integers(0, 128, n), start, start + rng.choice([1e-4, 0.01, 0.5, 30.0], n),
                               rng.integers(1, 128, n))]
    for chunk in (midiwrite.CHUNK, 7):  # block boundaries inside the data
        monkeypatch.setattr(midiwrite, "CHUNK", chunk)
        for notes in cases:
            got = io.BytesIO()
            notes.write_midi(got)
            assert got.getvalue() == pretty_midi_bytes(notes)


def test_note_buffer_equals_from_arrays():
    rng = np.random.default_rng(1)
    rows = np.stack([rng.integers(0, 128, (500, 2)), np.zeros((500, 2)), np.zeros((500, 2)),
                     rng.integers(1, 128, (500, 2))], axis=-1).astype(np.float64)  # (N, B, 4)
    rows[:, :, 1] = np.cumsum(rng.choice([0.0, 0.1], (500, 2)), axis=0)  # many equal onsets
    rows[:, :, 2] = rows[:, :, 1] + 0.05
    buf = NoteBuffer(2, capacity=3)  # grows
    for r in rows:
        buf.append(r)
    for b in range(2):
        ref, got = Notes.from_arrays(*rows[:, b].T), buf.notes(b)
        for name in ("pitch", "start", "end", "velocity"):
            assert np.array_equal(getattr(ref, name), getattr(got, name))
            assert getattr(ref, name).dtype == getattr(got, name).dtype


def test_memory_per_generated_note_is_bounded(in_run, tmp_path, monkeypatch):
    """Python-heap peak (tracemalloc sees numpy data and every Python object, e.g. a Step and its
    tensors per note) while generating and writing 5,000 notes: <= 100 bytes per note. (The writer's
    block temporaries are a fixed cost bounded by ``midiwrite.CHUNK``; a small block keeps that fixed
    cost out of a per-note figure taken at only 5,000 notes. benchmarks/sampling_memory.py measures
    the peak RSS for 200k notes with the default block.)"""
    from musicrnn.model.checkpoint import load_network

    monkeypatch.setattr(midiwrite, "CHUNK", 1024)

    net = load_network(in_run)
    gen = G.Generator(net, 1.0, None, None, 0, "cpu")
    gen.start(prime_bundled(0, int(net.seq_length)), 1)
    G.generate_with(gen, 200)  # warm-up: lazy imports and caches are not per-note memory
    n = 5000
    tracemalloc.start()
    try:
        notes = G.generate_with(gen, n)[0]
        notes.to_midi(tmp_path / "m.mid")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(notes) == n
    assert peak / n <= 100, f"{peak / n:.0f} bytes per note"
    assert Notes.from_midi(tmp_path / "m.mid").pitch.tolist() == notes.pitch.tolist()


# ---- 11: --temperature inf --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_temperature_must_be_finite(in_run, tmp_path, capsys, value):
    (tmp_path / "keep.mid").write_bytes(b"earlier")
    before = snapshot(tmp_path)
    refused(["--ckpt", str(in_run), "--temperature", value, "--out", str(tmp_path / "t.mid")],
            capsys, "--temperature must be a finite number >= 0", f"got {float(value)}", "--temperature 1.0")
    assert snapshot(tmp_path) == before
