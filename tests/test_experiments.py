"""The evaluation and the experiment runner, end to end on the bundled sample with a seconds-long budget."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from musicrnn.cli import experiments
from musicrnn.cli.report import load_rows, upsert_row, write_report

REPO = Path(__file__).resolve().parents[1]
TINY = ["--model.net.init_args.hidden_size", "8", "--data.train_windows_per_epoch", "256",
        "--trainer.limit_val_batches", "2", "--data.batch_size", "32"]


def test_config_summary_reads_the_header(tmp_path):
    cfg = tmp_path / "x.yaml"
    cfg.write_text("# Pitch weight 0.5\n# (else the tutorial)\nmodel: {}\n")
    assert experiments.config_summary(cfg) == "Pitch weight 0.5 (else the tutorial)"


def test_upsert_replaces_rows_by_name(tmp_path):
    upsert_row(tmp_path, {"name": "a", "v": 1})
    upsert_row(tmp_path, {"name": "b", "v": 2})
    upsert_row(tmp_path, {"name": "a", "v": 3})
    assert {r["name"]: r["v"] for r in load_rows(tmp_path)} == {"a": 3, "b": 2}


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
    (row,) = load_rows(Path("reports"))
    assert row["name"] == "baseline" and row["windows_seen"] > 0 and row["parameters"] > 0
    assert 0 < row["wall_minutes"] < 5
    assert math.isfinite(row["test"]["test/pitch_ce"]) and 0 < row["test"]["test/pitch_ce"] < 6
    assert set(row["overlap"]) == {"0.8", "1.0", "1.5", "2.0"}
    assert all(0 <= v <= 1 for v in row["overlap"].values())
    assert "musicrnn.experiments run" in row["command"]
    assert "--eval-samples 2" in row["command"] and "--fit-args" in row["command"]
    assert row["notes_predicted"] == row["windows_seen"]  # loss on the last position: one note per window
    md = Path("reports/experiments.md").read_text()
    assert "| baseline |" in md and "val_loss.png" in md
    assert Path("reports/val_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(Path("reports/rolls").glob("baseline_T*.png"))) == 4
    # the evaluation JSON is complete and JSON-clean
    result = json.loads(Path("runs/baseline/eval.json").read_text())
    assert {"test/pitch_ce", "test/pitch_acc", "test/pitch_top5", "test/step_mae",
            "test/duration_mae"} <= set(result["metrics"])


def test_report_shows_floor_ceiling_and_fraction_of_ceiling(tmp_path):
    """The floor/ceiling rows get their own section; a run's best overlap is shown over the ceiling."""
    run = {"kind": "run", "name": "r", "changed": "x", "parameters": 1, "wall_minutes": 1.0, "windows_seen": 64,
           "notes_predicted": 640, "epochs": 0, "val": {"pitch_ce": 3.0}, "val_piece": {"pitch_ce": 2.9, "nll": 9.0},
           "test": {}, "overlap": {"1.0": 0.6, "0.8": 0.7}, "device": "CPU", "command": "c", "eval_samples": 8}
    floor = {"kind": "floor", "name": "pitch 3-gram", "order": 3, "val": {"pitch_ce": 3.66},
             "val_piece": {"pitch_ce": 3.68}, "discounts": [0.4, 0.5], "command": "b"}
    ceiling = {"kind": "ceiling", "name": "real vs real (8)", "count": 8, "num_notes": 200, "split": "test",
               "mean_oa": 0.875, "seeds": 10, "min_oa": 0.846, "max_oa": 0.895, "std_oa": 0.015, "values": []}
    for row in (run, floor, ceiling):
        upsert_row(tmp_path, row)
    md = write_report(tmp_path).read_text()
    assert "## Floor and ceiling" in md and "| pitch 3-gram | 3.660 | 3.680 | 0.4, 0.5 |" in md
    assert "mean overlap **0.875** over 10 seeds (min 0.846, max 0.895, sd 0.015)" in md
    assert "| 0.800 |" in md  # best overlap 0.7 / ceiling 0.875
    assert "| 2.900 | 9.000 |" in md  # whole-piece validation columns


def test_report_has_the_structure_table_with_reference_rows(tmp_path):
    run = {"kind": "run", "name": "r", "changed": "x", "parameters": 1, "wall_minutes": 1.0, "windows_seen": 64,
           "epochs": 0, "val": {}, "test": {}, "overlap": {"0.9": 0.8}, "device": "CPU", "command": "c",
           "structure": {"0.9": {"motif_reuse": 0.013, "key_fit": 0.3, "register_drift": -5.5}}}
    upsert_row(tmp_path, run)
    for order, name in enumerate(("real", "loop", "trigram")):
        upsert_row(tmp_path, {"kind": "structure", "name": name, "order": order, "split": "test", "primes": 32,
                              "prime_length": 50, "num_notes": 200, "long_notes": 1000, "overlap": 0.8,
                              "structure": {"motif_reuse": 0.075, "key_fit": 0.58, "chord_share": 0.35}})
    md = write_report(tmp_path).read_text()
    assert "## Structure against the pianist" in md and "same 32 test-split primes" in md
    table = md.split("## Structure against the pianist")[1]
    names = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][1:]
    assert names == ["the pianist (real continuation)", "loop the prime", "pitch trigram", "r T=0.9"]
    assert "| r T=0.9 | 0.800 | 0.013 | – | 0.30 |" in table


def test_gallery_writes_samples_real_continuations_and_rolls(tmp_path):
    experiments.main(["gallery", "--out", str(tmp_path / "g"), "--count", "1", "--seed", "3"])
    names = sorted(p.name for p in (tmp_path / "g").iterdir())
    assert names == ["gallery.md", "real_0.mid", "roll_0.png", "sample_0.mid"]
    from musicrnn.notes import Notes

    sample, real = Notes.from_midi(tmp_path / "g" / "sample_0.mid"), Notes.from_midi(tmp_path / "g" / "real_0.mid")
    assert len(sample) == len(real) == 64 + 200  # the same prime, then 200 generated / real notes
    assert (sample.pitch[:64] == real.pitch[:64]).all()
    assert "temperature 0.9, top-p 0.95" in (tmp_path / "g" / "gallery.md").read_text()  # the shipped defaults


def test_gallery_by_default_leaves_the_shipped_gallery_alone_and_repeats_itself(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports" / "samples").mkdir(parents=True)
    experiments.main(["gallery", "--count", "1"])
    first = {p.name: p.read_bytes() for p in (tmp_path / "outputs" / "gallery").iterdir()}
    experiments.main(["gallery", "--count", "1"])
    again = {p.name: p.read_bytes() for p in (tmp_path / "outputs" / "gallery").iterdir()}
    assert list((tmp_path / "reports" / "samples").iterdir()) == []
    assert first == again and "sample_0.mid" in first  # same command, same bytes (MIDI, PNG, page)


def test_baselines_add_floor_ceiling_and_reference_structure_rows(tmp_path):
    experiments.main(["baselines", "--report-dir", str(tmp_path), "--val-windows", "200", "--counts", "2",
                      "--seeds", "2", "--split", "validation", "--primes", "2", "--num-notes", "100",
                      "--long-notes", "300"])
    rows = load_rows(tmp_path)
    kinds = [r["kind"] for r in rows]
    assert kinds.count("floor") == 4 and kinds.count("ceiling") == 1
    refs = {r["name"]: r for r in rows if r["kind"] == "structure"}
    assert set(refs) == {"real", "loop", "trigram"} and refs["real"]["primes"] == 2
    assert refs["loop"]["structure"]["motif_reuse"] > max(0.4, refs["real"]["structure"]["motif_reuse"])
    assert "register_drift" in refs["trigram"]["structure"]


def test_record_evaluates_in_process_and_writes_the_row(tiny_ckpt, tmp_path):
    import shutil

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_ckpt, run / "checkpoints" / "last.ckpt")
    experiments.main(["record", str(REPO / "configs" / "baseline.yaml"), "--run-dir", str(run), "--name", "tiny",
                      "--eval-samples", "2", "--eval-windows", "200", "--temperatures", "1.0", "0.8",
                      "--report-dir", str(tmp_path / "reports")])
    (row,) = load_rows(tmp_path / "reports")
    assert row["name"] == "tiny" and set(row["overlap"]) == set(row["structure"]) == {"1.0", "0.8"}
    assert math.isfinite(row["test"]["test/pitch_ce"]) and row["sampling"]["primes"] == 2
    assert {"motif_reuse", "key_fit", "register_drift"} <= set(row["structure"]["1.0"])
    result = json.loads((run / "eval.json").read_text())
    assert result["metrics"] == row["test"] and len(list((tmp_path / "reports" / "rolls").glob("tiny_T*.png"))) == 2
    assert "| tiny T=1.0 |" in (tmp_path / "reports" / "experiments.md").read_text()
