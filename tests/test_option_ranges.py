"""Impossible numbers are refused before anything is written, and every numeric constructor option has a
checked range (musicrnn/ranges.py)."""
from __future__ import annotations

import inspect
import re

import pytest

from cli_checks import exit_code, one_error, snapshot
from musicrnn.cli import fit
from musicrnn.ranges import RANGES


@pytest.mark.parametrize("args, key", [
    (["--data.batch_size", "0"], "--data.batch_size must be in [1, 65536]"),
    (["--model.lr", "-1"], "--model.lr must be > 0"),
    (["--model.weight_decay", "-1"], "--model.weight_decay must be >= 0"),
    (["--model.pitch_weight", "-1"], "--model.pitch_weight must be >= 0"),
    (["--model.gamma", "0"], "--model.gamma must be in (0, 1]"),
    (["--data.val_windows", "0"], "--data.val_windows must be >= 1"),
    (["--model.net.init_args.dropout", "1.5"], "--model.net.init_args.dropout must be in [0, 1)"),
    (["--model.net.init_args.hidden_size", "0"], "--model.net.init_args.hidden_size must be in [1, 16384]"),
    (["--samples_every_n_epochs", "-1"], "--samples_every_n_epochs must be >= 0"),
])
def test_impossible_numbers_exit_2_before_logs_or_checkpoints(run_dir, capsys, args, key):
    # the TensorBoard logger is on (the default): no logs/musicrnn/version_N may appear
    code = exit_code(fit.main, ["--trainer.max_steps", "1", *args])
    one_error(capsys, code, key, "fix the value")
    assert snapshot(run_dir) == {} and list(run_dir.iterdir()) == []


def _numeric_params(cls) -> list[str]:
    sig = inspect.signature(cls.__init__)
    return [n for n, p in sig.parameters.items()
            if re.fullmatch(r"(int|float|list\[int\])( \| None)?", str(p.annotation)) and n != "input_size"]


def test_every_numeric_constructor_option_has_a_range():
    from musicrnn.data.datamodule import MaestroDataModule
    from musicrnn.model import cores, window_cores
    from musicrnn.model.lightning import MusicModel

    missing = [f"model.{n}" for n in _numeric_params(MusicModel) if f"model.{n}" not in RANGES]
    missing += [f"data.{n}" for n in _numeric_params(MaestroDataModule) if f"data.{n}" not in RANGES]
    classes = {**vars(cores), **vars(window_cores)}.values()
    assert any(isinstance(c, type) and c.__name__ == "CausalTransformer" for c in classes)
    for cls in classes:
        if isinstance(cls, type) and issubclass(cls, cores.Net) and cls is not cores.Net:
            missing += [f"model.net.init_args.{n} ({cls.__name__})" for n in _numeric_params(cls)
                        if f"model.net.init_args.{n}" not in RANGES]
    assert missing == []
