"""``python -m musicrnn.fit`` user errors: one line ``error: ...``, exit code 2, nothing written.

In-process (``main(args)``) so each case costs a parse, not a Python start-up.
"""
from __future__ import annotations

import pytest

from musicrnn.cli.fit import main

SMALL = ["--model.net.init_args.hidden_size", "8", "--trainer.logger", "false"]


def _fails(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(SMALL + args)
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.strip() and not line.startswith("parsing MIDI")]  # the progress bar is not a message
    assert len(err) == 1, err  # one line, no usage dump, no traceback
    assert err[0].startswith("error: ")
    return err[0]


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _nothing_written(run_dir, *keep: str) -> None:
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(keep)


@pytest.mark.parametrize("args, expect", [
    (["--data.bogus", "1"], "unrecognized arguments: --data.bogus"),
    (["--trainer.max_epochs", "abc"], "--trainer.max_epochs: expected int or None, got 'abc'"),
    (["--data.seq_length", "many"], "--data.seq_length: expected int"),
    (["--model.net.class_path", "foo.Bar"], "--model.net"),
    (["--model.net", "musicrnn.nets.NoSuchNet"], "--model.net"),
    (["--ckpt_path", "last"], "checkpoints/last.ckpt does not exist"),
    (["--ckpt_path", "nope.ckpt"], "no such checkpoint"),
    (["--checkpoint_every_minutes", "-1"], "--checkpoint_every_minutes must be >= 0"),
    (["--data.seq_length", "0"], "data.seq_length must be in [1, 65536]"),
    (["--model.scheduler", "linear"], "model.scheduler must be one of"),
    (["--config", "missing.yaml"], "missing.yaml"),
])
def test_bad_option_is_one_line_and_writes_nothing(run_dir, capsys, args, expect):
    line = _fails(args, capsys)
    assert expect in line
    _nothing_written(run_dir)


def test_missing_data_folder(run_dir, capsys):
    line = _fails(["--data.root", str(run_dir / "nowhere")], capsys)
    assert "does not exist" in line and "--data.root" in line
    _nothing_written(run_dir)


def test_empty_data_folder(run_dir, capsys):
    (run_dir / "empty").mkdir()
    line = _fails(["--data.root", str(run_dir / "empty")], capsys)
    assert "has no MIDI files" in line
    _nothing_written(run_dir, "empty")


def test_folder_of_only_damaged_files(run_dir, capsys):
    (run_dir / "bad").mkdir()
    for i in range(3):
        (run_dir / "bad" / f"{i}.mid").write_bytes(b"MThd" + bytes(i))
    line = _fails(["--data.root", str(run_dir / "bad")], capsys)
    assert "could be read" in line
    _nothing_written(run_dir, "bad")


def test_garbage_resume_checkpoint(run_dir, capsys):
    (run_dir / "x.ckpt").write_bytes(b"not a checkpoint" * 10)
    line = _fails(["--ckpt_path", "x.ckpt"], capsys)
    assert "not a readable checkpoint" in line
    _nothing_written(run_dir, "x.ckpt")


def test_help_and_print_config_still_work(run_dir, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--checkpoint_every_minutes" in out and "--checkpoint_every_n_steps" in out
    with pytest.raises(SystemExit) as e:
        main(["--print_config", "--checkpoint_every_n_steps", "7"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "checkpoint_every_n_steps: 7" in out and "model:" in out
    _nothing_written(run_dir)
