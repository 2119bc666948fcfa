"""The README's "Python API" example runs exactly as written and does what its comments say."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_api_example() -> str:
    """The first ```python block of the README's "Python API" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_api_example_runs(tmp_path):
    code = readme_api_example()
    assert "musicrnn.load(" in code and "musicrnn.generate(" in code and "musicrnn.extend(" in code
    (tmp_path / "example.py").write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["128", "96", str(128 + 96), "0"]  # prime, continuation, read back, seed
    out = tmp_path / "outputs" / "api"
    assert (out / "piece.mid").is_file() and (out / "piece.png").read_bytes()[:4] == b"\x89PNG"
    import musicrnn

    if musicrnn.fluidsynth_available():
        assert (out / "again.wav").read_bytes()[:4] == b"RIFF"
