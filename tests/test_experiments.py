"""The evaluation and the experiment runner, end to end on the bundled sample with a seconds-long budget."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from musicrnn.cli import evaluate as ev
from musicrnn.cli import experiments

REPO = Path(__file__).resolve().parents[1]
TINY = ["--model.net.init_args.hidden_size", "8", "--data.train_windows_per_epoch", "256",
        "--trainer.limit_val_batches", "2", "--data.batch_size", "32"]


def test_config_summary_reads_the_header(tmp_path):
    cfg = tmp_path / "x.yaml"
    cfg.write_text("# Pitch weight 0.5\n# (else the tutorial)\nmodel: {}\n")
    assert experiments.config_summary(cfg) == "Pitch weight 0.5 (else the tutorial)"


def test_upsert_replaces_rows_by_name(tmp_path):
    experiments.upsert_row(tmp_path, {"name": "a", "v": 1})
    experiments.upsert_row(tmp_path, {"name": "b", "v": 2})
    experiments.upsert_row(tmp_path, {"name": "a", "v": 3})
    assert {r["name"]: r["v"] for r in experiments.load_rows(tmp_path)} == {"a": 3, "b": 2}


def test_report_without_rows_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        experiments.main(["report", "--report-dir", str(tmp_path)])
    assert e.value.code == 2
    assert "no experiment rows" in capsys.readouterr().err


@pytest.mark.slow
def test_runner_trains_evaluates_and_reports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    experiments.main(["run", str(REPO / "configs" / "baseline.yaml"), "--budget-minutes", "0.1",
                      "--eval-samples", "2", "--eval-windows", "300", "--runs-dir", "runs",
                      "--report-dir", "reports", "--fit-args", *TINY])
    (row,) = experiments.load_rows(Path("reports"))
    assert row["name"] == "baseline" and row["windows_seen"] > 0 and row["parameters"] > 0
    assert 0 < row["wall_minutes"] < 5
    assert math.isfinite(row["test"]["test/pitch_ce"]) and 0 < row["test"]["test/pitch_ce"] < 6
    assert set(row["overlap"]) == {"0.8", "1.0", "1.5", "2.0"}
    assert all(0 <= v <= 1 for v in row["overlap"].values())
    assert "musicrnn.experiments run" in row["command"]
    md = Path("reports/experiments.md").read_text()
    assert "| baseline |" in md and "val_loss.png" in md
    assert Path("reports/val_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(Path("reports/rolls").glob("baseline_T*.png"))) == 4
    # the evaluation JSON is complete and JSON-clean
    result = json.loads(Path("runs/baseline/eval.json").read_text())
    assert {"test/pitch_ce", "test/pitch_acc", "test/pitch_top5", "test/step_mae",
            "test/duration_mae"} <= set(result["metrics"])


def test_real_excerpts_are_seeded_and_contiguous():
    a = ev.real_excerpts(None, seq_length=10, num_notes=20, count=3, seed=5)
    b = ev.real_excerpts(None, seq_length=10, num_notes=20, count=3, seed=5)
    assert len(a) == 3
    for (p1, c1), (p2, c2) in zip(a, b):
        assert len(p1) == 10 and len(c1) == 20
        assert (p1.pitch == p2.pitch).all() and (c1.start == c2.start).all()
        assert p1.start[-1] <= c1.start[0]  # the continuation follows the prime
