"""One tiny trained checkpoint per test session, shared by the issue-11 test files (training costs
minutes on a busy 2-core machine, so it is done once, under pytest's session temp folder)."""
from __future__ import annotations

from pathlib import Path

from test_generate import train_tiny


def session_ckpt(tmp_path_factory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "tiny-issue11"
    path = folder / "tiny.ckpt"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        train_tiny(folder)
    return path
