"""End-to-end: ``python -m musicrnn.fit`` on the bundled sample writes a checkpoint and TensorBoard metrics.

The fit itself runs in a subprocess exactly as a user types it (bounded batches to stay fast); the
config checks run the same CLI class in-process without fitting.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "configs" / "baseline.yaml"
LOSS = "loss_pitch0.05_step1_duration1_mse"  # the tutorial's weighted loss, named for what it is
METRICS = (f"train/{LOSS}", f"val/{LOSS}", "val/pitch_ce", "val/pitch_acc", "val/pitch_top5", "val/step_mae",
           "val/duration_mae")


def fit_cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "musicrnn.fit", "--config", str(BASELINE), *extra]


def run(cmd: list[str], cwd: Path, cache: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUSICRNN_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    env.pop("MUSICRNN_DATA", None)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """One bounded epoch of the baseline, run from an empty working folder: 12 batches, fewer than the
    default log_every_n_steps (20), which must still log the train loss."""
    work = tmp_path_factory.mktemp("fit")
    r = run(fit_cmd("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "12",
                    "--trainer.limit_val_batches", "4", "--trainer.enable_progress_bar", "false"),
            cwd=work, cache=work / "cache")
    assert r.returncode == 0, r.stderr[-3000:]
    (work / "stderr.txt").write_text(r.stderr)
    return work


@pytest.mark.slow
def test_fit_writes_checkpoints(fitted):
    ckpts = sorted(p.name for p in (fitted / "checkpoints" / "baseline").glob("*.ckpt"))
    assert "last.ckpt" in ckpts and any(c.startswith("best-epoch000") for c in ckpts), ckpts
    from musicrnn.model.checkpoint import load_checkpoint, load_network

    model = load_network(fitted / "checkpoints" / "baseline" / "last.ckpt")
    assert model.hparams.seq_length == 25 and model.core.lstm.hidden_size == 128
    recorded = load_checkpoint(fitted / "checkpoints" / "baseline" / "last.ckpt").hparams
    assert recorded["pitch_weight"] == 0.05 and recorded["lr"] == 0.005


@pytest.mark.slow
def test_fit_logs_metrics_to_tensorboard(fitted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = sorted((fitted / "logs" / "baseline").glob("version_*"))
    assert len(runs) == 1
    assert (runs[0] / "config.yaml").exists()  # the resolved config is saved with the run
    acc = EventAccumulator(str(runs[0]))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    missing = [m for m in METRICS if m not in scalars]
    assert not missing, f"missing {missing}; have {sorted(scalars)}"
    for m in METRICS:
        values = [e.value for e in acc.Scalars(m)]
        assert values and all(v == v for v in values), m  # logged, and not NaN
    # a generated sample is shown next to the scalars (tb_samples.SampleLogger)
    assert "samples/piano_roll" in acc.Tags()["images"], acc.Tags()["images"]
    acc_value = acc.Scalars("val/pitch_acc")[-1].value
    assert 0.0 <= acc_value <= acc.Scalars("val/pitch_top5")[-1].value <= 1.0


@pytest.mark.slow
def test_fit_from_a_fresh_clone_prints_no_warning(fitted):
    err = (fitted / "stderr.txt").read_text()
    noise = [line for line in err.splitlines() if "warn" in line.lower() or "available:" in line
             or "litlogger" in line or "weights_only" in line or "deprecat" in line.lower()]
    assert not noise, noise


@pytest.mark.slow
def test_hparams_show_only_what_shapes_the_result(fitted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(sorted((fitted / "logs" / "baseline").glob("version_*"))[0]))
    acc.Reload()
    content = acc.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    assert b"lr" in content and b"seq_length" in content
    assert b"_instantiator" not in content and b"cache_dir" not in content


@pytest.mark.slow
def test_hp_metric_is_the_best_val_pitch_ce(fitted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(sorted((fitted / "logs" / "baseline").glob("version_*"))[0]))
    acc.Reload()
    best = min(e.value for e in acc.Scalars("val/pitch_ce"))
    hp = [e.value for e in acc.Scalars("hp_metric")]
    assert hp[-1] == pytest.approx(best) and -1.0 not in hp  # a real metric, never the -1 placeholder


@pytest.mark.slow
def test_default_root_dir_moves_checkpoints_and_logs(tmp_path):
    r = run(fit_cmd("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                    "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
                    "--samples_every_n_epochs", "0", "--trainer.default_root_dir", "out"),
            cwd=tmp_path, cache=tmp_path / "cache")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "out" / "checkpoints" / "baseline" / "last.ckpt").is_file()
    assert (tmp_path / "out" / "logs" / "baseline" / "version_0" / "config.yaml").is_file()
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "logs").exists()


def test_print_config(tmp_path):
    r = run(fit_cmd("--print_config"), cwd=tmp_path, cache=tmp_path / "cache", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    for expected in ("class_path: musicrnn.model.cores.LSTMNet", "hidden_size: 128", "seq_length: 25",
                     "pitch_weight: 0.05", "lr: 0.005", "batch_size: 64", "max_epochs: 50"):
        assert expected in out, expected
    assert not (tmp_path / "checkpoints").exists()  # printing trains nothing


def test_dotted_overrides_reach_the_model(tmp_path, monkeypatch):
    from musicrnn.cli.fit import TRAINER_DEFAULTS, MusicCLI
    from musicrnn.data.datamodule import MaestroDataModule
    from musicrnn.model.lightning import MusicModel

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)
    cli = MusicCLI(MusicModel, MaestroDataModule, run=False, trainer_defaults=TRAINER_DEFAULTS,
                   seed_everything_default=1234, save_config_kwargs={"overwrite": True},
                   args=["--config", str(BASELINE), "--data.seq_length", "50",
                         "--model.net.init_args.hidden_size", "32", "--model.lr", "0.001"])
    assert cli.datamodule.hparams.seq_length == 50
    assert cli.model.hparams.seq_length == 50  # linked from data.seq_length
    assert cli.model.network.core.lstm.hidden_size == 32 and cli.model.hparams.lr == 0.001
    assert cli.model.hparams.composers == cli.datamodule.composers


def test_bad_override_is_an_error(tmp_path):
    r = run(fit_cmd("--data.seq_length", "0", "--trainer.max_epochs", "1"), cwd=tmp_path,
            cache=tmp_path / "cache", timeout=120)
    assert r.returncode != 0
    assert "seq_length" in r.stderr and "Traceback" not in r.stderr
