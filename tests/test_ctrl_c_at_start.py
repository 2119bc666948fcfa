"""Ctrl-C in the first seconds of a command line, while torch and Lightning are still loading, exits with
130 and one "interrupted" line, never a traceback."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def torch_loading(pid: int) -> bool:
    """True once the process has mapped torch's shared library (its import has begun)."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("argv", [["musicrnn.fit", "--help"],
                                  ["musicrnn.sample", "--num-notes", "5", "--out", "x.mid"]], ids=["fit", "sample"])
def test_ctrl_c_while_importing_exits_130_quietly(argv, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUSICRNN_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not torch_loading(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if proc.poll() is not None:
        pytest.skip("the command finished before torch began to load")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "interrupted", err[-2000:]
    assert not (tmp_path / "x.mid").exists()
