"""Checkpoints of earlier musicrnn versions load; unknown formats are refused with one clear line.

Format 1 (before the plain ``MusicNet``; e.g. the pretrained model) is rebuilt here from a format-2
checkpoint exactly as that code wrote it: state_dict keys ``pitch_emb.*``, ``composer_emb.*``,
``net.*``, ``heads.*`` and the core's class path ``musicrnn.nets.X``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from musicrnn.errors import CheckpointError
from musicrnn.model.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, load_network, training_state_dict
from musicrnn.sampling.generator import generate
from musicrnn.sampling.primes import prime_bundled


def as_format_1(ckpt: dict) -> dict:
    old = dict(ckpt)
    old["state_dict"] = {("net." + k[len("network.core."):])
                         if k.startswith("network.core.") else k[len("network."):]: v
                         for k, v in ckpt["state_dict"].items()}
    name = ckpt["musicrnn"]["net"]["class_path"].rpartition(".")[2]
    old["musicrnn"] = {**ckpt["musicrnn"], "format": 1, "net": {**ckpt["musicrnn"]["net"],
                                                                 "class_path": f"musicrnn.nets.{name}"}}
    return old


@pytest.fixture(scope="module")
def both(tiny_ckpt, tmp_path_factory):
    new = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    assert new["musicrnn"]["format"] == CHECKPOINT_FORMAT == 2
    assert all(k.startswith("network.") for k in new["state_dict"])
    path = tmp_path_factory.mktemp("old") / "format1.ckpt"
    old = as_format_1(new)
    assert {"heads.pitch.proj.weight", "net.lstm.weight_ih_l0"} <= set(old["state_dict"])
    torch.save(old, path)
    return tiny_ckpt, path


def test_format_1_loads_into_the_plain_network_and_samples_the_same(both):
    new_path, old_path = both
    new_ck, old_ck = load_checkpoint(new_path), load_checkpoint(old_path)
    new, old = new_ck.net, old_ck.net
    assert type(old.core) is type(new.core) and old_ck.hparams == new_ck.hparams and old_ck.format == 1
    for k, v in new.state_dict().items():
        assert torch.equal(old.state_dict()[k], v), k
    prime = prime_bundled(seq_length=new.seq_length)
    a, b = generate(new, prime, 30, seed=3)[0], generate(old, prime, 30, seed=3)[0]
    assert np.array_equal(a.pitch, b.pitch) and np.array_equal(a.start, b.start)


def test_format_1_resumes_into_the_lightning_module(both):
    """fit --ckpt_path on a format-1 checkpoint: the LightningModule gets today's key names."""
    from musicrnn.model.lightning import MusicModel

    new_path, old_path = both
    old = torch.load(old_path, map_location="cpu", weights_only=True)
    loaded = load_checkpoint(new_path)
    model = MusicModel.wrap(loaded.net, **loaded.hparams)
    model.on_load_checkpoint(old)
    model.load_state_dict(old["state_dict"], strict=True)
    assert old["musicrnn"]["format"] == CHECKPOINT_FORMAT
    assert set(training_state_dict(old)) == set(model.state_dict())


@pytest.mark.parametrize("version", [3, 99, "2"])
def test_unknown_format_is_one_line_naming_the_version(both, tmp_path, version):
    ckpt = torch.load(both[0], map_location="cpu", weights_only=True)
    ckpt["musicrnn"]["format"] = version
    path = tmp_path / "future.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=f"checkpoint format {version!r} is not one this musicrnn reads") as e:
        load_network(path)
    assert "\n" not in str(e.value)
