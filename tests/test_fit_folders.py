"""Where ``fit`` writes: each config its own checkpoint and log folders; a resume continues its log folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from musicrnn.cli.fit import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--model.net.init_args.hidden_size", "8", "--trainer.limit_train_batches", "2",
        "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--samples_every_n_epochs", "0"]


@pytest.mark.slow
def test_each_config_has_its_own_folders_and_a_resume_continues_its_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)
    baseline, other = REPO / "configs" / "baseline.yaml", REPO / "configs" / "exp2_pitch_weight.yaml"
    main(["--config", str(baseline), *TINY, "--trainer.max_epochs", "1"])
    first = tmp_path / "checkpoints" / "baseline" / "last.ckpt"
    before = first.read_bytes()

    main(["--config", str(other), *TINY, "--trainer.max_epochs", "1"])
    assert (tmp_path / "checkpoints" / "exp2_pitch_weight" / "last.ckpt").is_file()
    assert first.read_bytes() == before  # the other config's run left this one alone
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["baseline", "exp2_pitch_weight"]

    main(["--config", str(baseline), *TINY, "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    assert first.read_bytes() != before
    assert sorted(p.name for p in (tmp_path / "logs" / "baseline").iterdir()) == ["version_0"]  # continued
    events = sorted((tmp_path / "logs" / "baseline" / "version_0").glob("events.out.tfevents.*"))
    assert len(events) == 2  # one per process that wrote to it
