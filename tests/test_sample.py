"""``python -m musicrnn.sample``: files written, readable by pretty_midi and mido, and bad input refused
with one line, exit code 2 and nothing written. Two runs are real subprocesses (exactly as a user
types them); the other cases call ``main`` in-process (same ``cli_main`` wrapper, much faster).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from helpers import MAESTRO_FILE, SEQ, multitrack_with_drums
from musicrnn.cli.sample import main as sample_main
from musicrnn.notes import Notes

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_ckpt) -> Path:
    """A run folder as fit leaves it: checkpoints/last.ckpt."""
    work = tmp_path_factory.mktemp("run")
    (work / "checkpoints").mkdir()
    shutil.copy(tiny_ckpt, work / "checkpoints" / "last.ckpt")
    return work


@pytest.fixture
def in_run(run_dir, monkeypatch, tmp_path):
    """cwd = the run folder; caches under tmp; outputs in a fresh folder."""
    monkeypatch.chdir(run_dir)
    monkeypatch.setenv("MUSICRNN_CACHE", str(run_dir / "cache"))
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)
    return tmp_path


def main(args: list[str]):
    """``sample`` on the tiny run's checkpoints/last.ckpt (without --ckpt it would use the pretrained model)."""
    return sample_main(args if "--ckpt" in args else ["--ckpt", "last.ckpt", *args])


def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUSICRNN_CACHE": str(cwd / "cache"), "PYTHONPATH": str(REPO)}
    env.pop("MUSICRNN_DATA", None)
    return subprocess.run([sys.executable, "-m", "musicrnn.sample", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def check_midi(path: Path, num_notes: int) -> Notes:
    """Loads in pretty_midi AND mido with the requested note count; steps >= 0, durations > 0."""
    pm = pretty_midi.PrettyMIDI(str(path))
    assert sum(len(i.notes) for i in pm.instruments) == num_notes
    on = [m for m in mido.MidiFile(str(path)) if m.type == "note_on" and m.velocity > 0]
    assert len(on) == num_notes
    n = Notes.from_midi(path)
    assert len(n) == num_notes
    assert (np.diff(n.start) >= 0).all() and (n.end > n.start).all()
    return n


def refused(argv: list[str], capsys, match: str) -> str:
    capsys.readouterr()  # drop output of earlier successful runs in the same test
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err[-1].startswith("error: ") and match in err[-1], err
    assert not any(line.startswith(("prime:", "using checkpoint", "Traceback")) for line in err), err
    return err[-1]


# ---- subprocess: exactly as a user runs it ------------------------------------------------------------
@pytest.mark.slow
def test_cli_writes_samples_from_run_folder(run_dir):
    r = cli(["--ckpt", "last.ckpt", "--num-notes", "40", "--seed", "0", "--num-samples", "2",
             "--out", "out/s.mid"], run_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "using checkpoint checkpoints/last.ckpt" in r.stderr
    for i in range(2):
        assert f"wrote out/s_{i}.mid (40 notes" in r.stdout
        check_midi(run_dir / "out" / f"s_{i}.mid", 40)
    assert not (run_dir / "out" / "s.mid").exists()


@pytest.mark.slow
def test_cli_missing_checkpoint_is_one_line_exit_2(run_dir):
    r = cli(["--ckpt", "nothere.ckpt", "--out", "missing/x.mid"], run_dir)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: nothere.ckpt")
    assert not (run_dir / "missing").exists()


# ---- in-process --------------------------------------------------------------------------------------
def test_same_seed_same_file(in_run, capsys):
    for name in ("a.mid", "b.mid"):
        main(["--num-notes", "30", "--seed", "3", "--temperature", "0.9", "--top-k", "20",
              "--out", str(in_run / name)])
    assert (in_run / "a.mid").read_bytes() == (in_run / "b.mid").read_bytes()
    check_midi(in_run / "a.mid", 30)
    assert f"wrote {in_run / 'a.mid'} (30 notes" in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated", b"hello, not a checkpoint\n"])
def test_bad_checkpoints_write_nothing(in_run, run_dir, capsys, content):
    bad = in_run / "bad.ckpt"
    if content == b"PK\x03\x04truncated":  # the first half of a real checkpoint
        data = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
        content = data[: len(data) // 2]
    bad.write_bytes(content)
    refused(["--ckpt", str(bad), "--out", str(in_run / "o" / "x.mid")], capsys, str(bad))
    assert not (in_run / "o").exists()


def test_midi_file_as_checkpoint_is_refused(in_run, capsys):
    refused(["--ckpt", str(MAESTRO_FILE), "--out", str(in_run / "x.mid")], capsys, MAESTRO_FILE.name)
    assert not (in_run / "x.mid").exists()


def test_prime_with_real_maestro_file(in_run):
    out = in_run / "m.mid"
    main(["--prime", str(MAESTRO_FILE), "--num-notes", "20", "--seed", "1", "--include-prime", "--out", str(out)])
    n = check_midi(out, SEQ + 20)
    full = Notes.from_midi(MAESTRO_FILE)
    assert sorted(n.pitch[:SEQ].tolist()) == sorted(full.pitch[-SEQ:].tolist())


def test_prime_with_multitrack_drums_midi(in_run, capsys):
    band = in_run / "band.mid"
    band.write_bytes(multitrack_with_drums(12))
    main(["--prime", str(band), "--prime-at", "start", "--num-notes", "15", "--seed", "2",
          "--out", str(in_run / "b.mid")])
    check_midi(in_run / "b.mid", 15)
    short = in_run / "short.mid"
    short.write_bytes(multitrack_with_drums(3))
    refused(["--prime", str(short), "--out", str(in_run / "s.mid")], capsys, "has 4 notes")
    assert not (in_run / "s.mid").exists()


@pytest.mark.parametrize("argv, match", [
    (["--prime", "nope.mid"], "nope.mid"),
    (["--composer", "Nobody Atall"], "--composer"),
    (["--num-notes", "0"], "--num-notes"),
    (["--top-p", "1.5"], "top_p"),
    (["--temperature", "-1"], "temperature"),
    (["--out", "x.wav"], ".mid or .midi"),
    (["--device", "tpu"], "--device"),
])
def test_bad_arguments_write_nothing(in_run, capsys, argv, match):
    out = in_run / "bad" / "x.mid"
    if "--out" not in argv:
        argv = [*argv, "--out", str(out)]
    refused(argv, capsys, match)
    assert not (in_run / "bad").exists() and not Path("x.wav").exists()


def test_composer_and_split_choice(in_run, capsys):
    main(["--prime-split", "test", "--composer", "<unknown>", "--num-notes", "10", "--seed", "0",
          "--out", str(in_run / "c.mid")])
    check_midi(in_run / "c.mid", 10)
    assert "prime: notes" in capsys.readouterr().err


def test_png_and_wav(in_run, capsys):
    render = pytest.importorskip("musicrnn.render")
    out = in_run / "r.mid"
    argv = ["--num-notes", "20", "--seed", "0", "--png", "--out", str(out)]
    if not render.fluidsynth_available():
        refused([*argv, "--wav"], capsys, "FluidSynth")
        assert not out.exists()
        main(argv)
    else:
        main([*argv, "--wav"])
        assert out.with_suffix(".wav").stat().st_size > 44
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    check_midi(out, 20)
