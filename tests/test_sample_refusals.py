"""``sample`` refuses before generating: an output folder that is full or read-only, an impossible
``--temperature``. Each refusal is exit 2 and one ``error:`` line naming the real file and the fix, with every
file already in the folder byte-identical; a successful run writes all its files or none. Disk-full and
read-only cases use a small tmpfs (root and ``mount``; skipped cleanly otherwise)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cli_checks import snapshot, tmpfs
from helpers import MAESTRO_FILE
from musicrnn.cli.sample import main
from musicrnn.notes import Notes
from musicrnn.sampling import generator as G


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


@pytest.fixture
def small_disk(tmp_path):
    """A 600 KB tmpfs (root only); unmounted in teardown."""
    with tmpfs(tmp_path / "small", "600k") as folder:
        yield folder


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


def test_full_disk_png_names_png_and_keeps_nothing(in_run, small_disk, capsys):
    pytest.importorskip("matplotlib")
    out = small_disk / "out.mid"
    Notes.from_midi(MAESTRO_FILE)[:20].to_midi(out)  # an earlier run's output of the same name
    fill(small_disk, 8 * 1024)  # room for the MIDI (one page), not for the PNG
    before = snapshot(small_disk)
    line = refused(["--ckpt", str(in_run), "--num-notes", "50", "--seed", "0", "--png", "--out", str(out)],
                   capsys, f"cannot write {small_disk / 'out.png'}", "No space left", "choose another --out")
    assert ".tmp" not in line
    assert snapshot(small_disk) == before  # the earlier out.mid intact, no new MIDI, no temp files left
    assert sorted(os.listdir(small_disk)) == sorted(before)


def test_full_disk_is_found_before_generating(in_run, small_disk, capsys, no_generation):
    (small_disk / "keep.mid").write_bytes(b"earlier")
    before = snapshot(small_disk)
    refused(["--ckpt", str(in_run), "--num-notes", "10000000", "--seed", "0", "--out", str(small_disk / "big.mid")],
            capsys, str(small_disk), "free", "needs up to", "choose another --out")
    assert snapshot(small_disk) == before and sorted(os.listdir(small_disk)) == sorted(before)


def test_read_only_folder_is_found_before_generating(in_run, small_disk, capsys, no_generation):
    (small_disk / "keep.mid").write_bytes(b"earlier")
    before = snapshot(small_disk)
    if subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot remount read-only")
    line = refused(["--ckpt", str(in_run), "--num-notes", "100", "--out", str(small_disk / "x.mid")],
                   capsys, f"cannot write in {small_disk}", "Read-only file system", "choose another --out")
    assert ".tmp" not in line
    assert snapshot(small_disk) == before


def test_all_outputs_or_none_on_success(in_run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "o" / "s.mid"
    main(["--ckpt", str(in_run), "--num-notes", "30", "--seed", "0", "--num-samples", "2", "--png", "--out", str(out)])
    names = sorted(os.listdir(out.parent))
    assert names == ["s_0.mid", "s_0.png", "s_1.mid", "s_1.png"]  # no temp or probe files left
    assert capsys.readouterr().out.count("wrote ") == 4


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_temperature_must_be_finite(in_run, tmp_path, capsys, value):
    (tmp_path / "keep.mid").write_bytes(b"earlier")
    before = snapshot(tmp_path)
    refused(["--ckpt", str(in_run), "--temperature", value, "--out", str(tmp_path / "t.mid")],
            capsys, "--temperature must be a finite number >= 0", f"got {float(value)}", "--temperature 1.0")
    assert snapshot(tmp_path) == before
