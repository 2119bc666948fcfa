"""MusicModel (training) and MusicNet (the plain network it wraps): every variant trains, logs the right
metrics, samples valid notes, steps like it runs whole windows, and comes back from its checkpoint alone."""
from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

from musicrnn.data.batches import WindowBatch
from musicrnn.errors import ConfigError
from musicrnn.model.checkpoint import load_checkpoint, load_network
from musicrnn.model.cores import HybridLSTM, LSTMDense, LSTMNet, StackedLSTM
from musicrnn.model.lightning import MusicModel
from musicrnn.model.network import MusicNet
from musicrnn.model.window_cores import BiLSTM, CausalTransformer

SEQ = 16
RICH = dict(timing_head="binned", velocity=True, pitch_embedding=8, composer_dim=4, pitch_weight=1.0,
            velocity_weight=1.0)
VARIANTS = {
    "baseline": (partial(LSTMNet, hidden_size=16), {}),
    "stacked": (partial(StackedLSTM, hidden_sizes=[16, 8], dropout=0.2), {"pitch_weight": 0.5}),
    "bidirectional": (partial(BiLSTM, hidden_size=8), {"velocity": True}),
    "lstm_dense": (partial(LSTMDense, hidden_size=16, dense_sizes=[8]), {"timing_head": "binned"}),
    "hybrid_rich": (partial(HybridLSTM, hidden_sizes=[16, 8], dense_sizes=[8]), {**RICH, "loss_on": "all"}),
    "transformer": (partial(CausalTransformer, d_model=16, nhead=2, num_layers=1, dim_feedforward=16),
                    {**RICH, "loss_on": "all", "scheduler": "exponential"}),
    "transformer_sin": (partial(CausalTransformer, d_model=8, nhead=2, num_layers=1, dim_feedforward=8,
                                positions="sinusoidal"), {"scheduler": "none"}),
}
COMPOSERS = ["<unknown>", "A", "B", "C"]


def make(name: str) -> MusicModel:
    torch.manual_seed(0)
    net, kw = VARIANTS[name]
    return MusicModel(net=net, seq_length=SEQ, composers=COMPOSERS, **kw)


def batch(b=4, t=SEQ + 1, seed=0):
    g = torch.Generator().manual_seed(seed)
    window = torch.stack([torch.randint(21, 109, (b, t), generator=g).float(),
                          torch.rand(b, t, generator=g) * 0.5, torch.rand(b, t, generator=g),
                          torch.randint(1, 128, (b, t), generator=g).float()], -1)  # (B, T, 4)
    return window, torch.arange(b) % len(COMPOSERS)


@pytest.fixture(scope="module")
def datamodule():
    from musicrnn.data.datamodule import MaestroDataModule

    dm = MaestroDataModule(seq_length=SEQ, batch_size=16, val_windows=32)
    dm.setup()
    return dm


@pytest.mark.parametrize("name", VARIANTS)
def test_fit_save_and_load_round_trip(name, datamodule, tmp_path):
    model = make(name)
    model.hparams.composers = datamodule.composers  # what the CLI link does
    model = MusicModel(net=VARIANTS[name][0], **{k: v for k, v in model.hparams.items()})
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, gradient_clip_val=1.0)
    trainer.fit(model, datamodule)
    m = trainer.callback_metrics
    assert torch.isfinite(m["val/loss"]) and 0 <= m["val/pitch_acc"] <= m["val/pitch_top5"] <= 1
    binned, velocity = model.hparams.timing_head == "binned", model.hparams.velocity
    assert ("val/nll" in m) == binned  # only when every head has a likelihood
    assert ("val/velocity_mae" in m) == velocity
    if binned:  # NLL = sum of the heads' CE; the loss is it too when all weights are 1
        assert m["val/nll"] > m["val/pitch_ce"]
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    again = load_network(path)
    assert isinstance(again, MusicNet) and not isinstance(again, L.LightningModule)
    core = model.network.core
    assert type(again.core) is type(core) and again.core.config() == core.config()
    assert load_checkpoint(path).hparams == dict(model.hparams)
    model.eval()
    window, composer = next(iter(datamodule.val_dataloader()))
    with torch.no_grad():
        want, _ = model(window[:, :-1], composer)
        got, _ = again(window[:, :-1], composer)
    assert want.keys() == got.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k])


@pytest.mark.parametrize("name", VARIANTS)
def test_sample_next_gives_valid_notes(name):
    model = make(name).eval()
    window, composer = batch()
    with torch.no_grad():
        out, _ = model(window[:, :-1], composer)
        last = {k: v[:, -1] for k, v in out.items()}
        g = torch.Generator().manual_seed(0)
        net = model.network
        note = net.sample(last, 1.0, top_k=10, top_p=0.95, generator=g)
        again = net.sample(last, 1.0, top_k=10, top_p=0.95, generator=torch.Generator().manual_seed(0))
        greedy = net.sample(last, 0.0)
    torch.testing.assert_close(note, again)  # seeded
    for n in (note, greedy):
        assert n.shape == (4, 4) and torch.isfinite(n).all()
        assert ((n[:, 0] >= 0) & (n[:, 0] <= 127)).all() and (n[:, 1:3] >= 0).all()
        assert ((n[:, 3] >= 1) & (n[:, 3] <= 127)).all() and (n[:, 3] == n[:, 3].round()).all()
    if not model.hparams.velocity:
        assert (note[:, 3] == 100).all()


@pytest.mark.parametrize("name", [n for n in VARIANTS if n not in ("bidirectional",)])
def test_model_steps_like_the_window(name):
    """What generate relies on: for a steppable network, the one per-note path (``MusicNet.step``, the
    cores' ``lstm_cell`` step) == one-note windows == the full window, at every position, with the
    same state; else the flag is off and sampling re-runs the window."""
    net = make(name).network.eval()
    window, composer = batch()
    x = window[:, :-1]
    with torch.no_grad():
        full, full_state = net(x, composer)
        if not net.steppable:  # sampling re-runs the window: each prefix's last output is the full pass's
            assert isinstance(net.core, CausalTransformer)
            for t in (0, x.shape[1] // 2, x.shape[1] - 1):
                prefix, _ = net(x[:, : t + 1], composer)
                for k in full:
                    torch.testing.assert_close(prefix[k][:, -1], full[k][:, t], atol=1e-5, rtol=1e-5)
            return
        _, state = net(x[:, :1], composer)  # a prime of one note, then one note per call
        fwd_state, stepped, windowed = state, [], []
        for t in range(1, x.shape[1]):
            o, state = net.step(x[:, t], composer, state)
            w, fwd_state = net(x[:, t : t + 1], composer, fwd_state)
            stepped.append(o)
            windowed.append(w)
    assert net.core.step_plan()  # the fast path ran (weights looked up once)
    for k in full:
        torch.testing.assert_close(torch.stack([o[k] for o in stepped], 1), full[k][:, 1:], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.cat([w[k] for w in windowed], 1), full[k][:, 1:], atol=1e-5, rtol=1e-5)
    flat = lambda s: torch.cat([t.flatten() for t in torch.utils._pytree.tree_leaves(s)])  # noqa: E731
    torch.testing.assert_close(flat(state), flat(full_state), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(flat(fwd_state), flat(full_state), atol=1e-5, rtol=1e-5)


def test_input_options_change_the_encoding():
    plain = MusicModel(net=partial(LSTMNet, hidden_size=8)).network
    assert plain.input_size == 3
    rich = MusicModel(net=partial(LSTMNet, hidden_size=8), pitch_embedding=8, velocity=True, composer_dim=4,
                      composers=COMPOSERS).network
    assert rich.input_size == 8 + 2 + 1 + 4 and rich.composer_emb.num_embeddings == 4
    window, composer = batch()
    enc = rich.encode(window, composer)  # (B, T, 15)
    torch.testing.assert_close(enc[..., 10], window[..., 3] / 127)  # velocity column
    torch.testing.assert_close(plain.encode(window)[..., 0], window[..., 0] / 128)
    # the composer changes the input; None means unknown (0)
    torch.testing.assert_close(rich.encode(window, None), rich.encode(window, torch.zeros(4, dtype=torch.long)))
    assert not torch.allclose(rich.encode(window, composer)[1:], rich.encode(window, None)[1:])
    with pytest.raises(ConfigError, match="composer id out of range"):
        rich.eval()(window, torch.full((4,), 9))


def test_composer_dropout_only_in_training():
    model = MusicModel(net=partial(LSTMNet, hidden_size=8), composer_dim=4, composers=COMPOSERS,
                       composer_dropout=1.0)
    window, composer = batch()
    model.train()
    torch.manual_seed(0)
    dropped = model.compute_loss(WindowBatch(window, composer))[0]
    torch.manual_seed(0)
    unknown = model.compute_loss(WindowBatch(window, torch.zeros_like(composer)))[0]
    torch.testing.assert_close(dropped, unknown)
    model.eval()
    assert not torch.allclose(model.compute_loss(WindowBatch(window, composer))[0], unknown)


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="not causal"):
        MusicModel(net=BiLSTM, loss_on="all")
    with pytest.raises(ConfigError, match="timing_head"):
        MusicModel(timing_head="gaussian")
    with pytest.raises(ConfigError, match="scheduler"):
        MusicModel(scheduler="linear")
    with pytest.raises(ConfigError, match=r"pitch_embedding must be in \[0, "):
        MusicModel(pitch_embedding=-1)


def test_loss_weights_per_head():
    window, composer = batch()
    torch.manual_seed(0)
    a = MusicModel(net=partial(LSTMNet, hidden_size=8), velocity=True, velocity_weight=0.0)
    loss, parts, _, _, _ = a.compute_loss(WindowBatch(window, composer))
    torch.testing.assert_close(loss, 0.05 * parts["pitch"] + parts["step"] + parts["duration"])
    assert set(parts) == {"pitch", "step", "duration", "velocity"}
