"""Sizes that cannot work are refused before anything is allocated, each as one ``error:`` line, exit 2
and no output file: ``--num-notes`` / ``--num-samples`` beyond the machine's memory (with the estimate and
what the machine has), ``--threads`` beyond its CPUs, a crafted checkpoint whose recorded sizes claim a
network far larger than its stored tensors, a prime that is a device or too large a file, and model sizes
beyond their ranges."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from musicrnn.cli.sample import main
from musicrnn.errors import CheckpointError, ConfigError
from musicrnn.memory import available_bytes
from musicrnn.model.checkpoint import load_network
from musicrnn.ranges import check_ranges
from musicrnn.sampling.budget import estimate_bytes
from musicrnn.sampling.primes import MAX_PRIME_BYTES

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def in_run(tiny_ckpt, monkeypatch):
    monkeypatch.setenv("MUSICRNN_CACHE", str(tiny_ckpt.parent / "cache"))
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)
    return tiny_ckpt


def refused(argv: list[str], capsys, *match: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    io_ = capsys.readouterr()
    err = [line for line in io_.err.strip().splitlines() if not line.startswith(("prime:", "seed "))]
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in io_.err and "wrote" not in io_.out
    for m in match:
        assert m in err[0], err[0]
    return err[0]


@pytest.mark.parametrize("flag", ["--num-notes", "--num-samples"])
def test_run_beyond_memory_is_refused_with_estimate_and_available(in_run, tmp_path, capsys, flag):
    net = load_network(in_run)
    size = 10**9
    notes, samples = (size, 1) if flag == "--num-notes" else (200, size)
    if available_bytes() is None or estimate_bytes(net, samples, notes) <= available_bytes():
        pytest.skip("this machine has the memory for it")
    out = tmp_path / "x.mid"
    line = refused(["--ckpt", str(in_run), flag, str(size), "--seed", "0", "--out", str(out)], capsys,
                   f"sampling {notes:,} notes x {samples:,} samples needs about ", "B of memory but this machine has",
                   "available — lower --num-notes or --num-samples")
    assert "B available" in line
    assert not out.exists() and not any(tmp_path.iterdir())


def test_estimate_covers_a_measured_batch(in_run):
    """The estimate grows with both sizes and stays small for ordinary runs."""
    net = load_network(in_run)
    assert estimate_bytes(net, 1, 200) < 10**6
    assert estimate_bytes(net, 2, 200) > estimate_bytes(net, 1, 200)
    assert estimate_bytes(net, 1, 10**9) > 10**11


def test_threads_beyond_the_cpus_is_one_line(in_run, tmp_path, capsys):
    refused(["--ckpt", str(in_run), "--threads", "100000", "--out", str(tmp_path / "x.mid")], capsys,
            f"--threads must be in [1, {os.cpu_count()}] (this machine's CPUs), got 100000")


@pytest.fixture
def crafted_ckpt(in_run, tmp_path) -> Path:
    """The tiny checkpoint's weights under a record claiming LSTM(12000): ~2.5 GB if it were built."""
    ckpt = torch.load(in_run, weights_only=True)
    small = {"musicrnn": ckpt["musicrnn"], "state_dict": ckpt["state_dict"]}
    small["musicrnn"]["net"]["init_args"]["hidden_size"] = 12000
    path = tmp_path / "crafted.ckpt"
    torch.save(small, path)
    return path


def test_crafted_sizes_are_refused_before_building(crafted_ckpt):
    with pytest.raises(CheckpointError, match=r"weights do not match the recorded model \(core\.lstm\.weight_ih_l0 "
                                              r"is stored as \(64, \d+\) but the recorded model needs \(48000, \d+\)"):
        load_network(crafted_ckpt)


def test_crafted_sizes_cost_no_memory(crafted_ckpt, in_run):
    """Peak memory of refusing the crafted file is that of loading the honest one (not +2.5 GB)."""
    code = ("import json, resource, sys\nfrom musicrnn.model.checkpoint import load_network\n"
            "try:\n    load_network(sys.argv[1])\n"
            "except Exception as e:\n    print(type(e).__name__, file=sys.stderr)\n"
            "print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    peaks = [json.loads(subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, env=env,
                                       check=True, timeout=300).stdout) for p in (in_run, crafted_ckpt)]
    assert peaks[1] < peaks[0] + 100_000, peaks  # KB: within 100 MB of the honest load


def test_prime_from_a_device_is_refused_unread(in_run, tmp_path, capsys):
    refused(["--ckpt", str(in_run), "--prime", "/dev/zero", "--out", str(tmp_path / "x.mid")], capsys,
            "/dev/zero: not a regular file", "pass a MIDI file")


def test_prime_larger_than_the_cap_is_refused_naming_it(in_run, tmp_path, capsys):
    big = tmp_path / "big.mid"
    with open(big, "wb") as f:
        f.write(b"MThd\0\0\0\x06\0\x01\0\x01\x01\xe0")
        f.truncate(MAX_PRIME_BYTES + 1)
    refused(["--ckpt", str(in_run), "--prime", str(big), "--out", str(tmp_path / "x.mid")], capsys,
            f"{big}: 4.0 MB is more than a prime is read from (at most 4 MB", "pass a shorter MIDI file")


@pytest.mark.parametrize("prefix, key, value, rule", [
    ("model", "timing_bins", 10**9, "in [2, 4096]"),
    ("model", "seq_length", 10**9, "in [1, 65536]"),
    ("model", "pitch_embedding", 10**9, "in [0, 4096]"),
    ("data", "batch_size", 10**9, "in [1, 65536]"),
    ("model.net.init_args", "hidden_size", 10**6, "in [1, 16384]"),
    ("model.net.init_args", "num_layers", 1000, "in [1, 64]"),
])
def test_sizes_have_upper_bounds(prefix, key, value, rule):
    with pytest.raises(ConfigError) as e:
        check_ranges(prefix, {key: value})
    assert str(e.value).startswith(f"--{prefix}.{key} must be {rule}, got {value} — "), str(e.value)
