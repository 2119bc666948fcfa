"""The package's shape: modules readable in one sitting, no hidden re-exports, sampling without Lightning.

The layering itself (which layer may import which) is import-linter's job: ``lint-imports``, run by
``.ci/run``, with the contracts in pyproject.toml.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "musicrnn"
MAX_LINES = 300
MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_module_is_at_most_300_lines(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(REPO)} has {n} lines (> {MAX_LINES}): split it by job"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_getattr_and_no_foreign_private_imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body), \
        f"{path.name}: module-level __getattr__ (a hidden re-export)"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("musicrnn"):
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.name} imports private names {private} from {node.module}"


def test_sampling_from_a_checkpoint_leaves_lightning_out(tiny_ckpt, tmp_path):
    """`python -m musicrnn.sample` (the real CLI, in a fresh interpreter) never imports Lightning,
    TensorBoard, torchmetrics or matplotlib; neither does loading a network and generating from it."""
    out = tmp_path / "x.mid"
    code = (
        "import runpy, sys, json\n"
        f"sys.argv = ['musicrnn.sample', '--ckpt', {str(tiny_ckpt)!r}, '--num-notes', '20', '--seed', '0',"
        f" '--out', {str(out)!r}]\n"
        "try:\n    runpy.run_module('musicrnn.sample', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "from musicrnn.model.checkpoint import load_network\n"
        "from musicrnn.sampling.generator import generate\n"
        "from musicrnn.sampling.primes import prime_bundled\n"
        f"net = load_network({str(tiny_ckpt)!r})\n"
        "generate(net, prime_bundled(seq_length=net.seq_length), 10, seed=0)\n"
        "heavy = ('lightning', 'pytorch_lightning', 'tensorboard', 'torchmetrics', 'matplotlib')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUSICRNN_CACHE": str(tiny_ckpt.parent / "cache")}
    env.pop("MUSICRNN_DATA", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.is_file()
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
