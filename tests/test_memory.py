"""The memory of the piece (a pointer over past hidden states): the same numbers whether a piece is fed
whole, in chunks with carried state, or one note at a time; a real distribution; it copies what the
piece already played; the learned mode trains; a checkpoint alone rebuilds it; the schedule decays."""
from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch

from musicrnn.model.cores import LSTMNet
from musicrnn.model.network import MusicNet
from musicrnn.model.schedule import cosine_factor
from musicrnn.notes import Notes
from tests.helpers import MAESTRO_FILE

NOTES = Notes.from_midi(MAESTRO_FILE)


def _piece(n: int = 120, rows: int = 2) -> torch.Tensor:
    """(rows, n, 4) raw features of real MAESTRO notes (row r starts r*n notes in)."""
    f = NOTES.features(velocity=True)
    return torch.from_numpy(np.stack([f[r * n:(r + 1) * n] for r in range(rows)])).float()


def _net(learn: bool, size: int = 32, seed: int = 0) -> MusicNet:
    torch.manual_seed(seed)
    return MusicNet(partial(LSTMNet, hidden_size=24), pitch_embedding=8, velocity=True, timing_head="binned",
                    cache_size=size, cache_theta=4.0, cache_lambda=0.3, cache_learn=learn).eval()


@pytest.mark.parametrize("learn", [False, True])
def test_chunks_and_steps_match_the_whole_piece(learn):
    net, x = _net(learn), _piece()
    with torch.no_grad():
        whole, _ = net(x)
        a, state = net(x[:, :37])
        b, _ = net(x[:, 37:], state=state)
        chunked = torch.cat([a["pitch"], b["pitch"]], 1)
        out, state = net(x[:, :5])
        stepped = [out["pitch"]]
        for t in range(5, x.shape[1]):
            o, state = net.step(x[:, t], state=state)
            stepped.append(o["pitch"].unsqueeze(1))
    assert torch.equal(chunked, whole["pitch"])
    assert torch.allclose(torch.cat(stepped, 1), whole["pitch"], atol=1e-5)


def test_pitch_output_is_a_distribution_and_the_first_note_is_the_model_alone():
    net, x = _net(False), _piece()
    plain = MusicNet(partial(LSTMNet, hidden_size=24), pitch_embedding=8, velocity=True, timing_head="binned").eval()
    plain.load_state_dict(net.state_dict())
    with torch.no_grad():
        out, _ = net(x)
        base, _ = plain(x)
    assert torch.allclose(out["pitch"].exp().sum(-1), torch.ones(2, x.shape[1]), atol=1e-5)
    # nothing is remembered before the first note: the mixture is the model's own softmax
    assert torch.allclose(out["pitch"][:, 0], base["pitch"][:, 0].log_softmax(-1), atol=1e-6)
    assert not torch.allclose(out["pitch"][:, 10:], base["pitch"][:, 10:].log_softmax(-1), atol=1e-3)


def test_the_cache_points_at_the_pitch_that_followed_the_same_context():
    """Hidden states that say "position k of a 12-note motif" (one-hot): with lambda near 1 and a sharp
    pointer, from the second time round the cache predicts each next pitch of the motif."""
    from musicrnn.model.memory import PitchCache

    pitch = _piece(12, 1)[0, :, 0].repeat(4).unsqueeze(0)  # (1, 48): the motif's pitches, 4 times
    h = torch.eye(12).repeat(4, 1).unsqueeze(0)  # (1, 48, 12)
    cache = PitchCache(12, size=64, theta=50.0, lam=0.99)
    logp, _ = cache(torch.zeros(1, 48, 128), h, pitch)
    assert torch.equal(logp[0, 12:47].argmax(-1), pitch[0, 13:48].long())
    assert logp[0, 12:47].exp().max(-1).values.min() > 0.9


def test_the_learned_memory_trains_and_its_gate_moves():
    net, x = _net(True), _piece(64, 4)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    gate0 = net.cache.gate.bias.item()
    losses = []
    for _ in range(15):
        out, _ = net(x[:, :-1])
        loss = net.heads["pitch"].loss(out["pitch"], x[:, 1:, 0].long())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] and net.cache.gate.bias.item() != gate0


def test_a_checkpoint_rebuilds_the_memory(tmp_path):
    from musicrnn.model.checkpoint import export_weights, load_network
    from musicrnn.model.lightning import MusicModel

    model = MusicModel(net=partial(LSTMNet, hidden_size=24), pitch_embedding=8, velocity=True, timing_head="binned",
                       cache_size=16, cache_learn=True, cache_theta=2.0)
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "musicrnn": {"format": 2, "net": model.network.core.config(),
                                                                "hparams": dict(model.hparams)}}, path)
    net = load_network(export_weights(path, tmp_path / "w.ckpt"))
    x = _piece(30, 1)
    with torch.no_grad():
        assert torch.equal(net(x)[0]["pitch"], model.network.eval()(x)[0]["pitch"])
    assert net.cache.size == 16 and net.cache.learn


def test_cosine_schedule_warms_up_then_decays_to_its_floor():
    assert cosine_factor(0, 0.0, 100, 0.1) == pytest.approx(0.01)
    assert cosine_factor(99, 0.0, 100, 0.1) == pytest.approx(1.0)
    assert cosine_factor(500, 0.5, 100, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cosine_factor(900, 1.0, 100, 0.1) == pytest.approx(0.1)
    assert cosine_factor(900, 2.0, 100, 0.1) == pytest.approx(0.1)
    assert cosine_factor(0, 0.25, 0, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_tune_memory_writes_a_checkpoint_whose_fixed_memory_is_tuned(in_run, tmp_path):
    """The runner's ``tune-memory``: a grid on validation pieces, the best setting stored in the
    checkpoint's hyperparameters, so the network loads with its memory and no option."""
    from musicrnn.cli.experiments import main
    from musicrnn.model.checkpoint import load_checkpoint

    out = tmp_path / "with_memory.ckpt"
    best = main(["tune-memory", "--ckpt", str(in_run), "--out", str(out), "--chunks", "2"])
    loaded = load_checkpoint(out)
    assert loaded.net.cache is not None and not loaded.net.cache.learn
    assert (loaded.net.cache.size, loaded.net.cache.theta, loaded.net.cache.lam) == (
        best["size"], best["theta"], best["lambda"])
    assert math.isfinite(best["pitch_ce"]) and math.isfinite(best["no_cache_pitch_ce"])
