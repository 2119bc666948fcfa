"""Checks shared by the tests of the command lines' refusals: exactly one ``error:`` line and exit code 2,
byte-for-byte snapshots of folders, and small or read-only file systems (a tmpfs needs root; tests skip
cleanly without it)."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

# a tiny network, no logger, progress bar or summary: a fit run in a second or two on the bundled sample
TINY = ["--model.net.init_args.hidden_size", "8", "--trainer.logger", "false", "--trainer.enable_progress_bar",
        "false", "--trainer.enable_model_summary", "false", "--checkpoint_every_minutes", "0"]


def one_error(capsys, code: int, *must: str) -> str:
    """Exit ``code``, no traceback, exactly one non-empty stderr line ``error: ...`` holding ``must``."""
    assert code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    err = [line for line in captured.err.splitlines()  # progress and "cache built" lines are not messages
           if line.strip() and not line.startswith(("parsing MIDI", "musicrnn: parsed"))]
    assert len(err) == 1, err
    assert err[0].startswith("error: "), err
    for m in must:
        assert m in err[0], (m, err[0])
    return err[0]


def exit_code(fn, args) -> int:
    with pytest.raises(SystemExit) as e:
        fn(args)
    return e.value.code


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes, for byte-for-byte comparison."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def tmpfs(path: Path, size: str, readonly: bool = False):
    """A small tmpfs at ``path`` (root only); skips the test cleanly where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    opts = f"size={size}" + (",ro" if readonly else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def readonly_folder(path: Path):
    """An empty folder nobody can write to: a read-only tmpfs as root, mode 0555 otherwise."""
    if os.geteuid() == 0:
        with tmpfs(path, "64k", readonly=True):
            yield path
    else:
        path.mkdir(parents=True)
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
