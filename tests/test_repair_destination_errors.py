"""``data repair`` into a destination that fills up (also inside a worker process) or is read-only: one
``error:`` line naming the destination and the fix, exit 2, and the files already there byte-identical."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers import MAESTRO_FILE
from musicrnn.cli.data import main
from musicrnn.data.cache import SAMPLE_ROOT


def tree(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error(argv, capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    io_ = capsys.readouterr()
    err = io_.err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in io_.err and io_.out == ""
    return err[0]


@pytest.mark.parametrize("jobs", ["1", "2"])  # 2: the OSError comes back through the worker pool
def test_full_destination_is_one_line_and_keeps_earlier_files(small_disk, capsys, jobs):
    dst = small_disk / "repaired"
    dst.mkdir()
    (dst / "notes.txt").write_bytes(b"an earlier file")
    (small_disk / "filler.bin").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 200 * 1024))
    before = tree(small_disk)
    line = one_error(["repair", str(SAMPLE_ROOT), str(dst), "--jobs", jobs], capsys)
    assert line.startswith(f"error: repair destination {dst} is full") and " free — free space there" in line
    after = tree(small_disk)
    assert all(after[name] == data for name, data in before.items())  # what was there: byte-identical
    for name in set(after) - set(before):  # the bundled files are intact: a copy is complete or absent
        assert after[name] == (SAMPLE_ROOT / os.path.relpath(small_disk / name, dst)).read_bytes(), name
    assert not any(".tmp" in name for name in after)


def test_read_only_destination_is_one_line(small_disk, capsys):
    dst = small_disk / "repaired"
    dst.mkdir()
    (dst / "keep.txt").write_bytes(b"earlier")
    if subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=False, capture_output=True).returncode:
        pytest.skip("cannot remount read-only")
    line = one_error(["repair", str(SAMPLE_ROOT), str(dst)], capsys)
    assert line.startswith(f"error: repair destination {dst} is not writable (Read-only file system) — "), line
    assert (dst / "keep.txt").read_bytes() == b"earlier"


def test_one_file_into_a_full_destination_is_one_line(small_disk, capsys):
    (small_disk / "filler.bin").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 4096))
    (small_disk / MAESTRO_FILE.name).write_bytes(b"earlier")
    line = one_error(["repair", str(MAESTRO_FILE), str(small_disk)], capsys)
    assert line.startswith(f"error: repair destination {small_disk} is full") and "choose another DST" in line
    assert (small_disk / MAESTRO_FILE.name).read_bytes() == b"earlier"
