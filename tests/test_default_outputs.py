"""What the README's commands write by default goes to git-ignored folders."""
from __future__ import annotations

from pathlib import Path


def test_default_outputs_are_git_ignored():
    from musicrnn.cli.fit import NO_LOGGER_ROOT
    from musicrnn.cli.sample import _parser

    ignored = (Path(__file__).resolve().parent.parent / ".gitignore").read_text().splitlines()
    assert "/outputs/" in ignored
    assert _parser().parse_args([]).out.startswith("outputs/")  # sample
    assert NO_LOGGER_ROOT == "outputs"  # fit --trainer.logger false: config.yaml
