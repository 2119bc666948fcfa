"""The shared sampling loop: repeatability, fed-back features, stepping == re-running, primes, devices.

A tiny LSTM (hidden 16, seq_length 8) is really trained for a few steps on the bundled MAESTRO
sample and saved/loaded through a checkpoint, so every test samples from a genuine trained model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import MAESTRO_FILE, SEQ, multitrack_with_drums
from musicrnn.errors import ConfigError, MidiError
from musicrnn.notes import Notes
from musicrnn.sampling.generator import MIN_DURATION, Generator, generate, place_after, resolve_composer, stream
from musicrnn.sampling.primes import prime_bundled, prime_from_midi


@pytest.fixture(scope="module")
def tiny(tiny_ckpt):
    from musicrnn.model.checkpoint import load_network

    return load_network(tiny_ckpt)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("notecache")


@pytest.fixture(scope="module")
def prime(cache_dir) -> Notes:
    return prime_bundled(seed=0, seq_length=SEQ, cache_dir=cache_dir)


def _same(a: Notes, b: Notes) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("pitch", "start", "end", "velocity"))


# ---- repeatability and basic shape --------------------------------------------------------------------
def test_fixed_seed_is_exactly_repeatable(tiny, prime):
    a = generate(tiny, prime, 40, num_samples=3, seed=7)
    b = generate(tiny, prime, 40, num_samples=3, seed=7)
    c = generate(tiny, prime, 40, num_samples=3, seed=8)
    assert len(a) == 3 and all(len(n) == 40 for n in a)
    assert all(_same(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x.pitch, y.pitch) for x, y in zip(a, c))
    assert not np.array_equal(a[0].pitch, a[1].pitch)  # one batch, independent samples


def test_greedy_ignores_seed(tiny, prime):
    a = generate(tiny, prime, 20, temperature=0.0, seed=1)[0]
    b = generate(tiny, prime, 20, temperature=0.0, seed=2)[0]
    assert _same(a, b)


def test_continuation_is_valid_music(tiny, prime):
    for n in generate(tiny, prime, 60, num_samples=2, seed=0, top_k=10, top_p=0.9):
        f = n.features(velocity=True)
        assert len(n) == 60 and n.start[0] >= 0  # t = 0 is the prime's last onset
        assert (f[:, 1] >= 0).all() and (n.end - n.start >= MIN_DURATION - 1e-12).all()
        assert ((n.pitch >= 0) & (n.pitch < 128)).all() and ((n.velocity >= 1) & (n.velocity <= 127)).all()


# ---- what is fed back --------------------------------------------------------------------------------
def test_fed_back_rows_equal_data_pipeline_features(tiny, prime):
    """The row fed back for each note == Notes.features of the same notes (raw pitch, not /128)."""
    gen = Generator(tiny, seed=3)
    gen.start(prime, num_samples=2)
    steps = [gen.step() for _ in range(50)]
    rows = torch.stack([s.features for s in steps], 1).numpy()  # (B, N, 4)
    for b in range(2):
        col = lambda k, b=b: torch.stack([getattr(s, k)[b] for s in steps]).numpy()  # noqa: E731
        # same notes, generation order (the pipeline sorts simultaneous notes by pitch; order kept here)
        same = Notes(col("pitch").astype(np.int16), col("start"), col("end"), col("velocity").astype(np.int16))
        expect = same.features(velocity=True)
        assert np.array_equal(rows[b, 1:], expect[1:])
        assert rows[b, 0, 1] == np.float32(same.start[0])  # first step: from the prime's last onset (t=0)
        assert np.array_equal(rows[b, 0, [0, 2, 3]], expect[0, [0, 2, 3]])
        assert rows[b, :, 0].max() > 1 and np.array_equal(rows[b, :, 0], np.rint(rows[b, :, 0]))


def test_prime_plus_continuation_round_trips_through_midi(tiny, prime, tmp_path):
    """Written to MIDI and read back by the data pipeline, the notes match what was fed (to a tick)."""
    cont = generate(tiny, prime, 40, seed=5)[0]
    both = place_after(prime, cont)
    back = Notes.from_midi(both.to_midi(tmp_path / "x.mid"))
    assert len(back) == len(both) == SEQ + 40
    tick = 0.5 / 960  # Notes.to_midi writes 960 ticks per beat at 120 bpm
    assert np.allclose(np.sort(back.start), np.sort(both.start), atol=tick)
    assert sorted(back.pitch.tolist()) == sorted(both.pitch.tolist())


class Wrapped(nn.Module):
    """A network that only speaks the public API, with a velocity 'head' and its own steppability."""

    def __init__(self, inner, steppable: bool = True):
        super().__init__()
        self.inner, self.steppable, self.core = inner, steppable, inner.core
        self.seq_length, self.composers = inner.seq_length, inner.composers
        self.heads, self.input_size = inner.heads, inner.input_size  # what the memory estimate reads

    def forward(self, x, composer, state=None):
        assert x.shape[-1] == 4 and torch.equal(x[..., 0], x[..., 0].round())  # raw MIDI pitch, not /128
        out, state = self.inner(x, composer, state if self.steppable else None)
        return out, (state if self.steppable else None)

    def step(self, x, composer, state):
        assert self.steppable and x.shape[-1] == 4 and torch.equal(x[..., 0], x[..., 0].round())
        return self.inner.step(x, composer, state)

    def sample(self, out, temperature, top_k, top_p, generator, timing_temperature=None):
        row = self.inner.sample(out, temperature, top_k, top_p, generator, timing_temperature).clone()
        row[:, 2] = -1.0  # a regression head clipped to 0 or below
        row[:, 3] = 64.7  # a velocity head's raw sample
        return row


def test_velocity_rounded_and_duration_floored(tiny, prime):
    n = generate(Wrapped(tiny), prime, 10, seed=0)[0]
    assert (n.velocity == 65).all() and np.allclose(n.end - n.start, MIN_DURATION)


# ---- stepping versus re-running ------------------------------------------------------------------------
def test_stepping_equals_rerunning_the_whole_history(tiny, prime):
    stepped = generate(tiny, prime, 30, num_samples=2, seed=11, mode="step")
    rerun = generate(tiny, prime, 30, num_samples=2, seed=11, mode="window", context=10_000)
    for a, b in zip(stepped, rerun):
        assert np.array_equal(a.pitch, b.pitch)
        assert np.allclose(a.start, b.start, atol=1e-5) and np.allclose(a.end, b.end, atol=1e-5)


def test_non_steppable_model_rewindows(tiny, prime):
    model = Wrapped(tiny, steppable=False)
    assert Generator(model).mode == "window"
    with pytest.raises(ConfigError):
        Generator(model, mode="step")
    a = generate(model, prime, 15, seed=2, context=10_000)[0]
    b = generate(tiny, prime, 15, seed=2, mode="step")[0]
    assert np.array_equal(a.pitch, b.pitch)
    assert len(generate(model, prime, 15, seed=2)[0]) == 15  # default window: last seq_length notes


def test_stream_matches_generate(tiny, prime):
    notes = list(stream(tiny, prime, num_notes=25, seed=4))
    ref = generate(tiny, prime, 25, seed=4)[0]
    starts = [s for _, s, _, _ in notes]
    assert starts == sorted(starts) and len(notes) == 25
    assert sorted(p for p, *_ in notes) == sorted(ref.pitch.tolist())
    assert np.allclose(sorted(starts), ref.start)
    it = stream(tiny, prime, seed=4)  # endless
    assert [next(it) for _ in range(30)][:25] == notes


# ---- devices, composers --------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_cuda_sampling_is_repeatable(tiny, prime):
    a = generate(tiny, prime, 30, num_samples=4, seed=9, device="cuda")
    b = generate(tiny, prime, 30, num_samples=4, seed=9, device="cuda")
    assert all(_same(x, y) for x, y in zip(a, b)) and all(len(x) == 30 for x in a)
    tiny.to("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_config_error(tiny):
    with pytest.raises(ConfigError, match="CUDA is not available"):
        Generator(tiny, device="cuda")
    assert Generator(tiny, device="auto").device.type == "cpu"


def test_composer_names(tiny):
    names = tiny.composers
    assert resolve_composer(tiny, None) == 0
    assert resolve_composer(tiny, names[-1]) == len(names) - 1
    assert resolve_composer(tiny, names[-1].lower()) == len(names) - 1
    with pytest.raises(ConfigError):
        resolve_composer(tiny, "Nobody Atall")
    with pytest.raises(ConfigError):
        resolve_composer(tiny, len(names))


# ---- primes ----------------------------------------------------------------------------------------------
def test_prime_from_real_maestro_file():
    full = Notes.from_midi(MAESTRO_FILE)
    end = prime_from_midi(MAESTRO_FILE, SEQ)
    start = prime_from_midi(MAESTRO_FILE, SEQ, at="start")
    assert len(end) == len(start) == SEQ and end.start[0] == 0 == start.start[0]
    assert np.array_equal(end.pitch, full.pitch[-SEQ:]) and np.array_equal(start.pitch, full.pitch[:SEQ])
    assert np.allclose(end.features(), full[-SEQ:].features(), atol=1e-6)


def test_prime_from_multitrack_midi_drops_drums(tmp_path):
    path = tmp_path / "band.mid"
    path.write_bytes(multitrack_with_drums(10))
    p = prime_from_midi(path, SEQ)
    assert len(p) == SEQ and 36 not in p.pitch.tolist()  # the bass is early, drums never appear
    assert set(p.pitch.tolist()) <= set(range(60, 72))
    short = tmp_path / "short.mid"
    short.write_bytes(multitrack_with_drums(3))  # 3 piano + 1 bass = 4 pitched notes, 40 drum hits
    with pytest.raises(MidiError, match="has 4 notes"):
        prime_from_midi(short, SEQ)


def test_prime_bundled_is_seeded_validation_window(cache_dir):
    a = prime_bundled(seed=1, seq_length=SEQ, cache_dir=cache_dir)
    b = prime_bundled(seed=1, seq_length=SEQ, cache_dir=cache_dir)
    assert _same(a, b) and len(a) == SEQ and a.start[0] == 0
    assert not all(_same(a, prime_bundled(seed=s, seq_length=SEQ, cache_dir=cache_dir)) for s in (2, 3))


def test_empty_prime_is_refused(tiny):
    with pytest.raises(MidiError):
        generate(tiny, Notes.empty(), 5)


# ---- the one per-note path: MusicNet.step == forward on one note -------------------------------------------
def test_network_step_equals_forward_at_one_position(tiny, prime):
    """MusicNet.step (the cores' lstm_cell step, weights looked up once) == forward on (B, 1, 4), with a
    state of the same format (the two mix), note after note."""
    x = torch.from_numpy(prime.features(velocity=True)).unsqueeze(0).repeat(2, 1, 1)  # (2, L, 4)
    comp = torch.tensor([1, 2])
    leaves = torch.utils._pytree.tree_leaves
    with torch.inference_mode():
        _, state = tiny(x[:, :2], comp)
        ref_state = state
        for t in range(2, x.shape[1]):
            ref, ref_state = tiny(x[:, t : t + 1], comp, ref_state)
            out, state = tiny.step(x[:, t], comp, state)
            assert set(out) == set(ref)
            for k in ref:  # native LSTM kernel vs oneDNN: equal up to float rounding
                assert out[k].shape == ref[k][:, 0].shape and torch.allclose(out[k], ref[k][:, 0], atol=1e-6)
            assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(leaves(state), leaves(ref_state)))


def test_batched_samples_equal_their_own_runs_at_temperature_zero(tiny, prime):
    """Greedy samples of one batch == the same sample run alone (the batch shares nothing but the path)."""
    batch = generate(tiny, prime, 25, num_samples=3, temperature=0.0)
    alone = generate(tiny, prime, 25, num_samples=1, temperature=0.0)[0]
    assert all(np.array_equal(b.pitch, alone.pitch) for b in batch)
    assert all(np.allclose(b.start, alone.start, atol=1e-6) for b in batch)


def test_pitch_sampler_draws_what_multinomial_draws():
    """sample_logits' exponential race is torch.multinomial(p, 1) without its host-synced check."""
    from musicrnn.model.heads import sample_logits

    logits = torch.randn(5, 128) * 3
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for _ in range(50):
        ours = sample_logits(logits, 1.0, generator=g1)
        ref = torch.multinomial(logits.softmax(-1), 1, generator=g2)[:, 0]
        assert torch.equal(ours, ref)
