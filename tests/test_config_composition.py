"""configs/ is composed, not copied: a file builds on one other file (``config: PARENT``), writes only
what it changes, one dotted setting per line, and every experiment still resolves to the values it
was run with (golden values in tests/golden/resolved_configs.json, captured before the files were
composed: for each config, every resolved value that differs from the code's defaults).

Resolving is ``python -m musicrnn.fit --config X --print_config`` in process (about 0.3 s per file).
"""
from __future__ import annotations

import contextlib
import io
import itertools
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "configs"
FILES = sorted(CONFIG_DIR.rglob("*.yaml"))
GOLDEN = json.loads((Path(__file__).parent / "golden" / "resolved_configs.json").read_text())
MAX_SHARED = 4  # identical setting lines two files may have in common


def resolve(*configs: Path | str) -> dict:
    """The whole resolved config of ``--config A --config B ...``, as ``--print_config`` prints it."""
    from musicrnn.cli.fit import main

    args = [a for c in configs for a in ("--config", str(c))] + ["--print_config"]
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        mp.setattr("sys.argv", ["musicrnn.fit"])  # pytest's own flags are not the CLI's
        main(args)
    return yaml.safe_load(out.getvalue())


def flat(d: dict, prefix: str = "", whole=("model.net",)) -> dict:
    """{"model.lr": 0.004, ...}; keys in ``whole`` stay one value (a core is compared as a unit)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key not in whole:
            out.update(flat(v, key + ".", whole))
        else:
            out[key] = v
    return out


def own_settings(path: Path) -> dict:
    """The settings a file writes itself, one per leaf (``model.net.init_args.hidden_size``), with its
    ``config`` line."""
    return flat(yaml.safe_load(path.read_text()) or {}, whole=())


@pytest.fixture(scope="module")
def resolved() -> dict:
    """{file: its resolved config, flattened}, plus None: the defaults (no config at all)."""
    return {None: flat(resolve()), **{f: flat(resolve(f)) for f in FILES}}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_every_experiment_resolves_to_the_values_it_was_run_with(resolved, name):
    defaults, got = resolved[None], resolved[CONFIG_DIR / f"{name}.yaml"]
    assert got.keys() == defaults.keys()
    changed = {k: v for k, v in got.items() if v != defaults[k]}
    assert changed == GOLDEN[name]


def test_no_two_files_share_more_than_a_few_setting_lines():
    settings = {f: set(map(repr, own_settings(f).items())) for f in FILES}
    for a, b in itertools.combinations(FILES, 2):
        shared = settings[a] & settings[b]
        assert len(shared) <= MAX_SHARED, f"{a.name} and {b.name} share {sorted(shared)}: move them to a block"


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(CONFIG_DIR)) for f in FILES])
def test_a_file_builds_on_an_existing_file_with_dotted_settings(path):
    """A nested group after ``config:`` (``model:`` with keys under it) would replace the parent's whole
    group, so settings are dotted, as on the command line; and every file says what it is."""
    text = path.read_text()
    assert text.startswith("# "), f"{path.name} has no header comment"
    own = yaml.safe_load(text) or {}
    for key in own:
        assert key == "config" or "." in key, f"{path.name}: write `{key}:` settings as `{key}.name: value`"
    if "config" in own:
        assert (path.parent / own["config"]).is_file(), f"{path.name}: config {own['config']} does not exist"


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(CONFIG_DIR)) for f in FILES])
def test_a_file_holds_only_what_it_changes(resolved, path):
    """Every setting differs from what the file builds on (its parent, or the code's defaults)."""
    own = yaml.safe_load(path.read_text()) or {}
    base = resolved[(path.parent / own["config"]).resolve()] if "config" in own else resolved[None]
    for key, value in flat({k: v for k, v in own.items() if k != "config"}).items():
        if key == "model.net":  # a core is named whole (class_path + init_args): compare the resolved core
            assert resolved[path]["model.net"] != base["model.net"], f"{path.name}: model.net repeats its base"
        else:
            assert base[key] != value, f"{path.name}: {key} repeats {value!r}, which it already has"


def test_repeated_config_flags_stack_blocks(tmp_path):
    """``--config BLOCK --config MINE``: later files win, setting by setting, so an experiment can also
    be written without a ``config:`` line and stacked on the command line."""
    mine = tmp_path / "mine.yaml"
    mine.write_text("model.net:\n  class_path: musicrnn.model.cores.LSTMNet\n  init_args:\n    hidden_size: 256\n"
                    "model.lr: 0.004\n")
    assert resolve(CONFIG_DIR / "blocks" / "recipe.yaml", mine) == resolve(CONFIG_DIR / "hybrid.yaml")
    stacked = flat(resolve(CONFIG_DIR / "hybrid.yaml", CONFIG_DIR / "blocks" / "cpu_epochs.yaml"))
    assert stacked["data.train_windows_per_epoch"] == 51200 and stacked["model.lr"] == 0.004


def test_every_experiment_has_golden_values():
    """A new experiment's entry: ``python tests/test_config_composition.py configs/NEW.yaml`` once it has run."""
    missing = [f.stem for f in CONFIG_DIR.glob("*.yaml") if f.stem not in GOLDEN]
    assert missing == [], f"no golden values for {missing}: add the lines printed by {__file__} {missing[0]}.yaml"


if __name__ == "__main__":  # print golden entries: {name: values that differ from the defaults}
    import sys

    base = flat(resolve())
    for arg in sys.argv[1:]:
        changed = {k: v for k, v in flat(resolve(arg)).items() if v != base[k]}
        print(f" {json.dumps(Path(arg).stem)}: {json.dumps(changed, sort_keys=True)},")
