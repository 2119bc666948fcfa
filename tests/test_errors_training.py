"""Issue 11, training and data side: every failure is one ``error:`` line, exit code 2, no traceback,
and every file written before is byte-for-byte intact.

1 two fit runs in one checkpoint folder, 2 the every-N-epochs checkpoint's folder and name, 3 a full
disk, 4 an unwritable cache folder, 5 impossible numbers in the config, 6 the reason a file could not
be read, 7 a note cache with unsound contents; plus --ckpt given a folder, the skipped-files line on
a cache hit and library noise. The CLIs run in-process (``main(args)``, same ``cli_main`` wrapper);
training runs are a step or two of a tiny model on the bundled sample.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from musicrnn.cli import data as data_cli
from musicrnn.cli import evaluate as evaluate_cli
from musicrnn.cli import fit
from musicrnn.cli import sample as sample_cli
from musicrnn.data.cache import SAMPLE_ROOT, _load, build_or_load, list_files
from musicrnn.errors import CheckpointError
from musicrnn.ranges import RANGES
from musicrnn.runlock import LOCK_NAME, hold, stale_temps
from musicrnn.training.callbacks import AtomicCheckpointIO

REPO = Path(__file__).resolve().parents[1]
SAMPLE_FILES = sorted(SAMPLE_ROOT.rglob("*.midi"))
TINY = ["--model.net.init_args.hidden_size", "8", "--trainer.logger", "false", "--trainer.enable_progress_bar",
        "false", "--trainer.enable_model_summary", "false", "--checkpoint_every_minutes", "0"]


# ---- helpers -------------------------------------------------------------------------------------
def _one_error(capsys, code: int, *must: str) -> str:
    """Exit ``code``, no traceback, exactly one non-empty stderr line ``error: ...`` holding ``must``."""
    assert code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    err = [line for line in captured.err.splitlines()  # progress and "cache built" lines are not messages
           if line.strip() and not line.startswith(("parsing MIDI", "musicrnn: parsed"))]
    assert len(err) == 1, err
    assert err[0].startswith("error: "), err
    for m in must:
        assert m in err[0], (m, err[0])
    return err[0]


def _exit_code(fn, args) -> int:
    with pytest.raises(SystemExit) as e:
        fn(args)
    return e.value.code


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes, for byte-for-byte comparison."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def _tmpfs(path: Path, size: str, readonly: bool = False):
    """A small tmpfs at ``path`` (root only); skips the test cleanly where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    opts = f"size={size}" + (",ro" if readonly else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def _readonly_folder(path: Path):
    """An empty folder nobody can write to: a read-only tmpfs as root, mode 0555 otherwise."""
    if os.geteuid() == 0:
        with _tmpfs(path, "64k", readonly=True):
            yield path
    else:
        path.mkdir(parents=True)
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """cwd = an empty run folder, so 'nothing written' is 'the folder is still empty'."""
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.chdir(run)
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)
    return run


# ---- 5: impossible numbers are refused before anything is written ---------------------------------
@pytest.mark.parametrize("args, key", [
    (["--data.batch_size", "0"], "--data.batch_size must be >= 1"),
    (["--model.lr", "-1"], "--model.lr must be > 0"),
    (["--model.weight_decay", "-1"], "--model.weight_decay must be >= 0"),
    (["--model.pitch_weight", "-1"], "--model.pitch_weight must be >= 0"),
    (["--model.gamma", "0"], "--model.gamma must be in (0, 1]"),
    (["--data.val_windows", "0"], "--data.val_windows must be >= 1"),
    (["--model.net.init_args.dropout", "1.5"], "--model.net.init_args.dropout must be in [0, 1)"),
    (["--model.net.init_args.hidden_size", "0"], "--model.net.init_args.hidden_size must be >= 1"),
    (["--samples_every_n_epochs", "-1"], "--samples_every_n_epochs must be >= 0"),
])
def test_impossible_numbers_exit_2_before_logs_or_checkpoints(run_dir, capsys, args, key):
    # the TensorBoard logger is on (the default): no logs/musicrnn/version_N may appear
    code = _exit_code(fit.main, ["--trainer.max_steps", "1", *args])
    _one_error(capsys, code, key, "fix the value")
    assert _snapshot(run_dir) == {} and list(run_dir.iterdir()) == []


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


# ---- 1: two runs, one checkpoint folder --------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_second_run_in_a_checkpoint_folder_is_refused_and_a_dead_runs_lock_is_taken_over(run_dir, capsys):
    ck = run_dir / "ck"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from musicrnn.runlock import hold\n"
         "with hold(sys.argv[1]):\n    print('held', flush=True); time.sleep(300)", str(ck)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "held"
        (ck / "last.ckpt").write_bytes(os.urandom(5000))  # the other run's checkpoint ...
        (ck / f".last.ckpt.{holder.pid}.abcd1234.tmp").write_bytes(os.urandom(3000))  # ... and its write in flight
        before = _snapshot(ck)
        code = _exit_code(fit.main, [*TINY, "--trainer.max_steps", "1", "--checkpoint.dirpath", str(ck)])
        _one_error(capsys, code, f"checkpoint folder {ck} is in use", f"(PID {holder.pid})", "--checkpoint.dirpath")
        assert _snapshot(ck) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the holder died: its lock and temp file are stale; the next run takes over and cleans up after it
    assert (ck / LOCK_NAME).read_text().strip() == str(holder.pid)
    fit.main([*TINY, "--trainer.max_steps", "1", "--checkpoint.dirpath", str(ck)])
    assert sorted(p.name for p in ck.iterdir()) == ["last.ckpt"]
    assert torch.load(ck / "last.ckpt", weights_only=True)["global_step"] == 1


def test_a_save_removes_only_temp_files_of_itself_and_dead_runs(tmp_path):
    path = tmp_path / "last.ckpt"
    live = tmp_path / ".last.ckpt.1.livewrite.tmp"  # PID 1 is always alive: another run mid-write
    dead = tmp_path / f".last.ckpt.{_dead_pid()}.deadwrite.tmp"
    mine = tmp_path / f".last.ckpt.{os.getpid()}.oldwrite.tmp"
    for p in (live, dead, mine):
        p.write_bytes(b"partial")
    assert sorted(stale_temps(path)) == sorted([str(dead), str(mine)])
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.ckpt", live.name])
    assert live.read_bytes() == b"partial"


def test_lock_is_exclusive_and_released(tmp_path):
    with hold(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(CheckpointError, match=rf"in use by another musicrnn.fit run \(PID {os.getpid()}\)"):
            with hold(tmp_path):
                pass
    assert not (tmp_path / LOCK_NAME).exists()
    with hold(tmp_path):  # free again
        pass


# ---- 2: the every-N-epochs checkpoint follows --checkpoint.dirpath; quiet output ---------------------
def test_periodic_checkpoint_goes_to_checkpoint_dirpath_named_epochNNN_and_no_noise(run_dir, capsys):
    ck = run_dir / "ck"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.main([*TINY, "--checkpoint.dirpath", str(ck), "--periodic_checkpoint.every_n_epochs", "1",
                  "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                  "--trainer.limit_val_batches", "1", "--data.batch_size", "8"])
    names = sorted(p.name for p in ck.iterdir())
    assert "epoch000.ckpt" in names and "last.ckpt" in names, names
    assert not (run_dir / "checkpoints").exists()
    out = capsys.readouterr()
    text = out.out + out.err + "\n".join(str(w.message) for w in caught)
    for noise in ("litlogger", "GPU available: False", "TPU available: False", "LeafSpec",
                  "args parameter is intended"):
        assert noise not in text, noise


# ---- 3: a full disk ----------------------------------------------------------------------------------
def test_full_checkpoint_folder_is_one_line_and_keeps_the_previous_checkpoint(run_dir, capsys):
    ck = run_dir / "small"
    with _tmpfs(ck, "600k"):
        (ck / "last.ckpt").write_bytes(os.urandom(150_000))  # the previous checkpoint
        before = _snapshot(ck)
        code = _exit_code(fit.main, [*TINY, "--model.net.init_args.hidden_size", "256", "--trainer.max_steps", "1",
                                     "--checkpoint.dirpath", str(ck)])
        _one_error(capsys, code, f"checkpoint folder {ck} is full", "needs", "free",
                   "--checkpoint.dirpath", "previous last.ckpt is kept")
        assert _snapshot(ck) == before  # no temp file, no lock file, the old checkpoint byte for byte


def test_disk_filling_up_during_the_write_is_one_error_and_keeps_the_previous_file(tmp_path, monkeypatch):
    ck = tmp_path / "small"
    with _tmpfs(ck, "600k"):
        (ck / "last.ckpt").write_bytes(os.urandom(100_000))
        before = _snapshot(ck)
        monkeypatch.setattr("musicrnn.training.callbacks.check_room", lambda *a: None)  # let the write itself hit ENOSPC
        with pytest.raises(CheckpointError, match=r"is full: last.ckpt needs .* — free space there"):
            AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(300_000)}, ck / "last.ckpt")
        assert _snapshot(ck) == before


# ---- 4: an unwritable cache folder -----------------------------------------------------------------
@pytest.mark.parametrize("how", ["env", "env_subfolder", "flag"])
def test_unwritable_cache_folder_in_fit(run_dir, tmp_path, capsys, monkeypatch, how):
    with _readonly_folder(tmp_path / "ro") as ro:
        args = [*TINY, "--trainer.max_steps", "1"]
        if how == "flag":
            args += ["--data.cache_dir", str(ro)]
        else:
            monkeypatch.setenv("MUSICRNN_CACHE", str(ro / "sub" if how == "env_subfolder" else ro))
        code = _exit_code(fit.main, args)
        _one_error(capsys, code, f"cache folder {ro}", "not writable", "set MUSICRNN_CACHE")
        assert list(run_dir.iterdir()) == [] and list(ro.iterdir()) == []


def test_unwritable_cache_folder_in_data_stats_sample_and_evaluate(run_dir, tmp_path, capsys, monkeypatch, tiny_ckpt):
    (run_dir / "keep.txt").write_text("earlier output")
    before = _snapshot(run_dir)
    with _readonly_folder(tmp_path / "ro") as ro:
        monkeypatch.setenv("MUSICRNN_CACHE", str(ro))
        for fn, args in ((data_cli.main, ["stats"]),
                         (sample_cli.main, ["--ckpt", str(tiny_ckpt), "--num-notes", "5", "--out", "out.mid"]),
                         (evaluate_cli.main, ["--ckpt", str(tiny_ckpt), "--samples", "1", "--num-notes", "5"])):
            code = _exit_code(fn, args)
            _one_error(capsys, code, f"cache folder {ro}", "not writable", "set MUSICRNN_CACHE")
            assert _snapshot(run_dir) == before
        assert list(ro.iterdir()) == []


# ---- 6: the actual reason a file could not be read ---------------------------------------------------
def _midi(drums: bool, notes: int) -> bytes:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    if notes:
        inst = pretty_midi.Instrument(0, is_drum=drums)
        inst.notes += [pretty_midi.Note(90, 36 + i % 10, 0.1 * i, 0.1 * i + 0.05) for i in range(notes)]
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def _line_ending_damaged() -> bytes:
    from test_midifile import damage, with_crlf

    return damage(with_crlf(SAMPLE_FILES[0].read_bytes()))


@pytest.mark.parametrize("content, reason, repair", [
    (lambda: _midi(drums=True, notes=20), "drums only", False),
    (lambda: _midi(drums=False, notes=0), "no notes", False),
    (lambda: b"these are my notes, not MIDI\n", "not a Standard MIDI File", False),
    (_line_ending_damaged, "line-ending damage", True),
])
def test_unreadable_folder_names_each_files_reason_and_suggests_repair_only_for_line_endings(
        run_dir, capsys, content, reason, repair):
    folder = run_dir / "data"
    folder.mkdir()
    (folder / "only.mid").write_bytes(content())
    before = _snapshot(run_dir)
    code = _exit_code(fit.main, [*TINY, "--data.root", str(folder)])
    line = _one_error(capsys, code, "only.mid", reason)
    assert ("musicrnn.data repair" in line) == repair, line
    if not repair:
        assert "--data.root" in line
    assert _snapshot(run_dir) == before


# ---- 7: the note cache's contents are checked on load --------------------------------------------------
CORRUPTIONS = {
    "pitch 200": (lambda a: {**a, "pitch": np.where(np.arange(len(a["pitch"])) == 5, 200, a["pitch"])
                             .astype(a["pitch"].dtype)}, "pitch outside 0..127"),
    "unequal lengths": (lambda a: {**a, "end": a["end"][:-3]}, "unequal lengths"),
    "NaN starts": (lambda a: {**a, "start": np.where(np.arange(len(a["start"])) == 7, np.nan, a["start"])},
                   "not finite"),
    "offsets x3": (lambda a: {**a, "offsets": a["offsets"] * 3}, "offsets do not add up"),
}


@pytest.fixture
def small_data(tmp_path, monkeypatch) -> Path:
    """Two bundled files plus one text file named .mid, and a private cache folder."""
    folder = tmp_path / "data"
    folder.mkdir()
    for p in SAMPLE_FILES[:2]:
        shutil.copy(p, folder / p.name)
    (folder / "readme.mid").write_text("not MIDI")
    monkeypatch.setenv("MUSICRNN_CACHE", str(tmp_path / "cache"))
    return folder


def _stats(folder: Path, capsys) -> tuple[dict, list[str]]:
    data_cli.main(["stats", str(folder), "--jobs", "1"])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return json.loads(out.out.strip().splitlines()[-1]), [x for x in out.err.splitlines() if x.strip()]


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_unsound_cache_is_rebuilt_with_one_line_saying_why(small_data, capsys, name):
    good, _ = _stats(small_data, capsys)
    [path] = (Path(os.environ["MUSICRNN_CACHE"]) / "notes").glob("notes-*.npz")
    original = path.read_bytes()
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    mutate, why = CORRUPTIONS[name]
    with open(path, "wb") as f:
        np.savez(f, **mutate(arrays))
    stats, err = _stats(small_data, capsys)
    assert stats == good
    unusable = [x for x in err if "ignoring unreadable cache" in x]
    assert len(unusable) == 1 and why in unusable[0] and "rebuilding" in unusable[0], err
    assert path.read_bytes() == original  # rebuilt to the same bytes


def test_load_checks_the_cache_against_the_files_it_is_given(small_data, capsys):
    cache = build_or_load(small_data, progress=False, jobs=1, verbose=False)
    files = list_files(small_data)
    assert [f.path for f in _load(cache.path, small_data, files).files] == [f.path for f in cache.files]
    with pytest.raises(ValueError, match="file list does not match"):
        _load(cache.path, small_data, files[:1])


# ---- 11 (part) ---------------------------------------------------------------------------------------
def test_skipped_files_line_is_printed_on_a_cache_hit_too(small_data, capsys):
    for _ in range(2):  # build, then hit
        _, err = _stats(small_data, capsys)
        skipped = [x for x in err if "skipped 1 file it could not use" in x]
        assert len(skipped) == 1 and "not MIDI" in skipped[0] and "repair" not in skipped[0], err


def test_a_folder_given_as_checkpoint_says_so_and_suggests_last_ckpt(run_dir, capsys):
    (run_dir / "ck").mkdir()
    (run_dir / "ck" / "last.ckpt").write_bytes(b"x")
    before = _snapshot(run_dir)
    code = _exit_code(fit.main, [*TINY, "--ckpt_path", "ck"])
    _one_error(capsys, code, "ck is a folder", os.path.join("ck", "last.ckpt"))
    code = _exit_code(sample_cli.main, ["--ckpt", "ck", "--out", "out.mid"])
    _one_error(capsys, code, "ck is a folder", "--ckpt " + os.path.join("ck", "last.ckpt"))
    assert _snapshot(run_dir) == before
