"""The model that ships in the package: small, weights-only, licensed, and playing with no --ckpt."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from musicrnn.model.checkpoint import PRETRAINED, load_network
from musicrnn.notes import Notes
from musicrnn.sampling.generator import generate


def test_pretrained_file_is_small_licensed_and_weights_only():
    assert PRETRAINED.is_file() and PRETRAINED.stat().st_size <= 10 * 2**20
    assert "CC BY-NC-SA 4.0" in (PRETRAINED.parent / "LICENSE").read_text()
    ckpt = torch.load(PRETRAINED, map_location="cpu", weights_only=True)  # no pickled code in it
    assert set(ckpt) == {"musicrnn", "state_dict", "datamodule_hyper_parameters"}
    assert ckpt["musicrnn"]["format"] == 2


def test_pretrained_samples_notes():
    net = load_network(PRETRAINED)
    prime = Notes.from_features([[60 + k % 12, 0.25, 0.2, 80] for k in range(16)])
    (notes,) = generate(net, prime, 12, temperature=1.0, seed=0)
    assert len(notes) == 12 and notes.pitch.min() >= 0 and notes.pitch.max() < 128
    (again,) = generate(net, prime, 12, temperature=1.0, seed=0)
    assert (notes.pitch == again.pitch).all()


@pytest.mark.parametrize("args", [[], ["--ckpt", "pretrained"]])
def test_sample_without_ckpt_uses_the_pretrained_model(tmp_path, args):
    out = tmp_path / "x.mid"
    r = subprocess.run([sys.executable, "-m", "musicrnn.sample", "--num-notes", "20", "--out", str(out),
                        "--seed", "0", *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if "pretrained model" in line]
    assert len(said) == 1 and "CC BY-NC-SA 4.0" in said[0]
    assert len(Notes.from_midi(out)) == 20
