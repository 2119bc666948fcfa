"""One seed repeats a ``sample`` run: the seed printed for a run without ``--seed`` drives both the prime
window and the sampling, so passing it back writes the same MIDI file byte for byte. The default prime
is drawn from every file of the dataset, not always from the same two validation pieces. ``--help``
shows the defaults."""
from __future__ import annotations

import re

import pytest

from musicrnn.cli.sample import main
from musicrnn.data.cache import SAMPLE_ROOT
from musicrnn.sampling.primes import pick_window


@pytest.fixture
def in_run(tiny_ckpt, monkeypatch, tmp_path):
    """The tiny checkpoint with its note cache (no parsing); outputs under tmp."""
    monkeypatch.setenv("MUSICRNN_CACHE", str(tiny_ckpt.parent / "cache"))
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)
    return tiny_ckpt


def run(ckpt, out, capsys, *extra: str) -> str:
    capsys.readouterr()
    main(["--ckpt", str(ckpt), "--num-notes", "30", "--out", str(out), *extra])
    return capsys.readouterr().err


def test_printed_seed_repeats_the_file_byte_for_byte(in_run, tmp_path, capsys):
    first = run(in_run, tmp_path / "first.mid", capsys)
    seed = re.search(r"pass --seed (\d+) to repeat", first)
    assert seed, first
    again = run(in_run, tmp_path / "again.mid", capsys, "--seed", seed.group(1))
    assert "to repeat" not in again  # a given seed is not printed again
    prime = [line for line in first.splitlines() if line.startswith("prime:")]
    assert prime and prime == [line for line in again.splitlines() if line.startswith("prime:")]
    assert (tmp_path / "again.mid").read_bytes() == (tmp_path / "first.mid").read_bytes()


def test_given_seed_picks_the_same_prime_and_notes(in_run, tmp_path, capsys):
    a = run(in_run, tmp_path / "a.mid", capsys, "--seed", "7")
    b = run(in_run, tmp_path / "b.mid", capsys, "--seed", "7")
    assert a == b and (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()


def test_default_prime_comes_from_every_split(in_run):
    files = {pick_window(SAMPLE_ROOT, None, seed, 25).file for seed in range(60)}
    validation = {pick_window(SAMPLE_ROOT, "validation", seed, 25).file for seed in range(20)}
    assert len(validation) == 2  # the bundled sample's validation split: the old default's two pieces
    assert len(files) >= 8  # of the bundled sample's 10 pieces


@pytest.mark.parametrize("seed", ["-1", str(10**23)])
def test_seed_out_of_range_is_one_line(in_run, tmp_path, capsys, seed):
    with pytest.raises(SystemExit) as e:
        run(in_run, tmp_path / "x.mid", capsys, "--seed", seed)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err == [f"error: --seed must be in [0, 2**64), got {seed} — pass e.g. --seed 0"]
    assert not (tmp_path / "x.mid").exists()


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert e.value.code == 0
    for shown in ("--num-notes NUM_NOTES notes generated after the prime, per sample (default: 200)",
                  "(default: 0.9)", "(default: 0.95)", "(default: 1)", "(default: cpu)",
                  "(default: outputs/samples/out.mid)"):
        assert shown in text, shown
    assert "(default: None)" not in text and "(default: False)" not in text
