"""One reading of --ckpt for every command, and checkpoints whose content cannot be trusted refused."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from musicrnn.errors import CheckpointError
from musicrnn.model.checkpoint import (
    PRETRAINED,
    LoadedCheckpoint,
    find_checkpoint,
    load_checkpoint,
)
from musicrnn.runfiles import CHECKPOINT_DIR, LAST_CHECKPOINT


@pytest.fixture
def run_dir(tiny_ckpt, tmp_path, monkeypatch):
    """A run folder as fit leaves it, as the current directory."""
    (tmp_path / CHECKPOINT_DIR).mkdir()
    shutil.copy(tiny_ckpt, tmp_path / CHECKPOINT_DIR / LAST_CHECKPOINT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("arg", ["last", LAST_CHECKPOINT, ".", CHECKPOINT_DIR, f"{CHECKPOINT_DIR}/{LAST_CHECKPOINT}"])
def test_every_spelling_of_the_last_checkpoint_finds_it(run_dir, arg):
    loaded = load_checkpoint(arg)
    assert os.path.samefile(loaded.path, run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT)
    assert not loaded.pretrained and loaded.using_line() == f"using checkpoint {loaded.path}"


def test_pretrained_carries_its_settings_and_provenance():
    loaded = load_checkpoint("pretrained")
    assert isinstance(loaded, LoadedCheckpoint) and loaded.pretrained and loaded.path == PRETRAINED
    assert find_checkpoint(None) == PRETRAINED
    assert loaded.data["val_window_length"] == 50 and "lr" in loaded.hparams and loaded.info
    assert not hasattr(loaded.net, "recorded_hparams")  # facts travel beside the network, not patched on it
    assert "CC BY-NC-SA 4.0" in loaded.using_line()


def _tampered(tiny_ckpt, tmp_path, change) -> str:
    ckpt = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    change(ckpt)
    path = tmp_path / "bad.ckpt"
    torch.save(ckpt, path)
    return str(path)


@pytest.mark.parametrize("change, words", [
    (lambda c: c["musicrnn"].__setitem__("hparams", [1, 2]), "'hparams' must be a mapping, not a list"),
    (lambda c: c["musicrnn"].__setitem__("net", "LSTMNet"), "'net' must be a mapping with a class_path"),
    (lambda c: c["musicrnn"]["net"].__setitem__("init_args", [16]), "'net.init_args' must be a mapping"),
    (lambda c: c.__setitem__("datamodule_hyper_parameters", "x"), "'datamodule_hyper_parameters' must be a mapping"),
    (lambda c: c["state_dict"].__setitem__("network.extra", 3), "weight 'network.extra' is not a tensor"),
])
def test_malformed_metadata_is_one_line(tiny_ckpt, tmp_path, change, words):
    with pytest.raises(CheckpointError, match="damaged checkpoint metadata") as e:
        load_checkpoint(_tampered(tiny_ckpt, tmp_path, change))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_non_finite_weights_are_refused(tiny_ckpt, tmp_path):
    def poison(c):
        key = next(k for k in c["state_dict"] if k.startswith("network.heads.pitch"))
        c["state_dict"][key] = c["state_dict"][key].clone().fill_(float("nan"))

    with pytest.raises(CheckpointError, match="holds NaN or Inf .* use an earlier checkpoint"):
        load_checkpoint(_tampered(tiny_ckpt, tmp_path, poison))


def test_a_folder_without_last_ckpt_says_what_to_pass(tmp_path):
    with pytest.raises(CheckpointError, match=f"is a folder without {LAST_CHECKPOINT}"):
        load_checkpoint(tmp_path)


@pytest.mark.slow
def test_evaluate_runs_the_pretrained_model_on_the_bundled_sample(tmp_path):
    """The model card's command, kept small: metrics, structure rows and the using line."""
    import json

    r = subprocess.run([sys.executable, "-m", "musicrnn.evaluate", "--ckpt", "pretrained", "--split", "validation",
                        "--max-windows", "200", "--samples", "2", "--num-notes", "30", "--long-notes", "0",
                        "--temperatures", "1.0", "--no-references"],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
                       check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert 2.0 < out["metrics"]["val/pitch_ce"] < 4.0 and set(out["structure"]) == {"T=1.0"}
    assert sum("using the pretrained model" in line for line in r.stderr.splitlines()) == 1
