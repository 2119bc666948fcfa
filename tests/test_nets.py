"""Cores: one interface, stepping == full forward for steppable cores, honest flags for the others,
and a config that rebuilds each core exactly."""
from __future__ import annotations

import pytest
import torch

from musicrnn.errors import CheckpointError
from musicrnn.model.cores import HybridLSTM, LSTMDense, LSTMNet, StackedLSTM
from musicrnn.model.network import build_core
from musicrnn.model.window_cores import BiLSTM, CausalTransformer

IN = 5
STEPPABLE = {
    "lstm": lambda: LSTMNet(IN, 16),
    "lstm2": lambda: LSTMNet(IN, 16, num_layers=2, dropout=0.3),
    "stacked": lambda: StackedLSTM(IN, [24, 12], dropout=0.3),
    "lstm_dense": lambda: LSTMDense(IN, 16, [20, 8], dropout=0.3),
    "hybrid": lambda: HybridLSTM(IN, [24, 12], [10], dropout=0.3),
}
ALL = {**STEPPABLE, "bilstm": lambda: BiLSTM(IN, 16, dropout=0.3),
       "transformer": lambda: CausalTransformer(IN, d_model=16, nhead=2, num_layers=2, dim_feedforward=32),
       "transformer_sin": lambda: CausalTransformer(IN, d_model=16, nhead=2, num_layers=1, dim_feedforward=32,
                                                    positions="sinusoidal")}


def _x(b=2, t=9, seed=0):
    return torch.randn(b, t, IN, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ALL)
def test_shapes_and_out_dim(name):
    torch.manual_seed(0)
    net = ALL[name]().eval()
    h, _ = net(_x())
    assert h.shape == (2, 9, net.out_dim) and torch.isfinite(h).all()


@pytest.mark.parametrize("name", STEPPABLE)
def test_stepping_matches_full_forward(name):
    """Feeding one note at a time (and in uneven chunks) with the carried state gives the same h."""
    torch.manual_seed(0)
    net = STEPPABLE[name]().eval()  # eval: dropout off, as when sampling
    assert net.steppable and net.causal
    x = _x()
    with torch.no_grad():
        full, _ = net(x)
        state, steps = None, []
        for t in range(x.shape[1]):
            h, state = net(x[:, t : t + 1], state)
            steps.append(h)
        torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
        h1, s = net(x[:, :4])
        h2, _ = net(x[:, 4:], s)
        torch.testing.assert_close(torch.cat([h1, h2], 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", STEPPABLE)
def test_step_is_forward_on_one_timestep(name):
    """``step`` (lstm_cell, weights looked up once) == ``forward`` on (B, 1, D), in h and in the state it
    returns (same format, so the two mix), at every position; in training mode it is forward itself."""
    torch.manual_seed(0)
    net = STEPPABLE[name]().eval()
    x = _x()
    with torch.no_grad():
        _, state = net(x[:, :1])
        ref_state = state
        for t in range(1, x.shape[1]):
            h, state = net.step(x[:, t], state)
            ref, ref_state = net(x[:, t : t + 1], ref_state)
            torch.testing.assert_close(h, ref[:, 0], atol=1e-6, rtol=1e-5)
            leaves = torch.utils._pytree.tree_leaves
            assert [a.shape for a in leaves(state)] == [b.shape for b in leaves(ref_state)]
            for a, b in zip(leaves(state), leaves(ref_state)):
                torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        plan = net.step_plan()
        assert net.step_plan() is plan  # looked up once...
        net.train()
        assert net._plan is None  # ... and again after a mode change
        torch.manual_seed(1)
        h, _ = net.step(x[:, 1], state)
        torch.manual_seed(1)
        ref, _ = net(x[:, 1:2], state)
        torch.testing.assert_close(h, ref[:, 0])


@pytest.mark.parametrize("name", ["transformer", "transformer_sin"])
def test_transformer_is_causal_not_steppable(name):
    torch.manual_seed(0)
    net = ALL[name]().eval()
    assert net.causal and not net.steppable
    x = _x()
    with torch.no_grad():
        full, state = net(x)
        assert state is None
        for t in (0, 3, 8):  # a prefix sees exactly what the full window saw at t
            prefix, _ = net(x[:, : t + 1])
            torch.testing.assert_close(prefix[:, -1], full[:, t], atol=1e-5, rtol=1e-5)
        y = x.clone()
        y[:, 5:] += 1.0  # changing the future leaves the past alone
        changed, _ = net(y)
    torch.testing.assert_close(changed[:, :5], full[:, :5], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(changed[:, 5:], full[:, 5:])
    with pytest.raises(ValueError, match="not steppable"):
        net(x, state=object())
    with pytest.raises(ValueError, match="max_len"):
        CausalTransformer(IN, d_model=8, nhead=2, max_len=4)(_x(t=5))


def test_bilstm_flags_and_sees_the_whole_window():
    torch.manual_seed(0)
    net = BiLSTM(IN, 16).eval()
    assert not net.steppable and not net.causal
    x = _x()
    with torch.no_grad():
        h, state = net(x)
        y = x.clone()
        y[:, -1] += 1.0
        h2, _ = net(y)
    assert state is None
    # the last position's summary includes the backward pass over the whole window...
    assert not torch.allclose(h[:, 0], h2[:, 0])
    # ... and its second half is the same summary at every position
    torch.testing.assert_close(h[:, 0, 16:], h[:, -1, 16:])
    with pytest.raises(ValueError, match="not steppable"):
        net(x, state=(torch.zeros(1), torch.zeros(1)))


@pytest.mark.parametrize("name", ALL)
def test_config_rebuilds_the_same_core(name):
    torch.manual_seed(0)
    net = ALL[name]().eval()
    spec = net.config()
    assert spec["class_path"].startswith(("musicrnn.model.cores.", "musicrnn.model.window_cores."))
    assert all(not isinstance(v, tuple) for v in spec["init_args"].values())  # plain types for the ckpt
    again = build_core(spec, IN).eval()
    old = build_core({**spec, "class_path": "musicrnn.nets." + spec["class_path"].rpartition(".")[2]}, IN)
    assert type(old) is type(again)  # checkpoint format 1 named the cores musicrnn.nets.X
    again.load_state_dict(net.state_dict(), strict=True)
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(again(x)[0], net(x)[0])


def test_recorded_lists_are_copies():
    sizes = [8, 4]
    net = StackedLSTM(IN, sizes)
    sizes.append(2)
    assert net.config()["init_args"]["hidden_sizes"] == [8, 4]


def test_build_core_refuses_foreign_classes():
    for path in ("os.system", "torch.nn.LSTM", "musicrnn.nets.build_net", "musicrnn.model.cores.DenseBlock",
                 "musicrnn.model.network.MusicNet", "musicrnn.model.cores.Net"):
        with pytest.raises(CheckpointError, match="unknown network class"):
            build_core({"class_path": path, "init_args": {}}, IN)


def test_parameter_counts():
    """Golden counts: a change here changes checkpoints (and the README table)."""
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(LSTMNet(3, 128)) == 4 * 128 * (3 + 128 + 2)
    assert count(StackedLSTM(3)) == 4 * 256 * (3 + 256 + 2) + 4 * 128 * (256 + 128 + 2)
    assert count(LSTMDense(3)) == count(LSTMNet(3, 128)) + 128 * 128 + 128
    assert count(HybridLSTM(3)) == count(StackedLSTM(3)) + 128 * 128 + 128
    assert count(BiLSTM(3)) == 2 * count(LSTMNet(3, 128))
