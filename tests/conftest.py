"""Shared pytest fixtures: where MAESTRO is, and a private cache folder for every test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _maestro_path() -> Path:
    env = os.environ.get("MUSICRNN_MAESTRO")
    return Path(env) if env else REPO.parent / "shared" / "data" / "maestro-v2.0.0"


def _have_maestro() -> bool:
    return (_maestro_path() / "maestro-v2.0.0.csv").is_file()


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``maestro`` when the dataset is absent (one clear reason, no failures)."""
    if _have_maestro():
        return
    skip = pytest.mark.skip(reason=f"MAESTRO v2.0.0 not found at {_maestro_path()} (set MUSICRNN_MAESTRO)")
    for item in items:
        if "maestro" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def maestro_root() -> Path:
    """The MAESTRO v2.0.0 folder (read-only); skips the test when it is absent."""
    if not _have_maestro():
        pytest.skip(f"MAESTRO v2.0.0 not found at {_maestro_path()} (set MUSICRNN_MAESTRO)")
    return _maestro_path()


def pytest_configure(config):
    """Ctrl-C tests need SIGINT to work as in a terminal. A shell that starts a job in the background
    without job control (CI launchers do) makes the job ignore SIGINT, and children inherit that."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory) -> Path:
    """Point $MUSICRNN_CACHE at a session temp folder so tests never write to ~/.cache."""
    path = tmp_path_factory.mktemp("musicrnn-cache")
    old = os.environ.get("MUSICRNN_CACHE")
    os.environ["MUSICRNN_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("MUSICRNN_CACHE", None)
    else:
        os.environ["MUSICRNN_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A genuinely trained tiny LSTM checkpoint (``helpers.train_tiny``), trained once per test run.

    Its folder's ``cache/`` holds the bundled sample's note cache. Tests copy it, never change it.
    """
    from helpers import train_tiny

    return train_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def in_run(tiny_ckpt, monkeypatch):
    """``tiny_ckpt`` with the note cache it was trained with, so the default (bundled) prime needs no parsing."""
    monkeypatch.setenv("MUSICRNN_CACHE", str(tiny_ckpt.parent / "cache"))
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)
    return tiny_ckpt


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """cwd = an empty run folder, so 'nothing written' is 'the folder is still empty'."""
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.chdir(run)
    monkeypatch.delenv("MUSICRNN_DATA", raising=False)
    return run


@pytest.fixture(scope="session")
def jack():
    """A JACK server with the dummy driver for the session (skips without jackd)."""
    import shutil

    from jackserver import dummy_jack_server

    if shutil.which("jackd") is None:
        pytest.skip("jackd not installed (apt-get install jackd2)")
    with dummy_jack_server("musicrnn-test") as name:
        yield name


@pytest.fixture
def receiver(jack):
    """A second JACK client with an input port, recording what it receives."""
    from helpers import Receiver

    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def small_disk(tmp_path):
    """A 600 KB tmpfs for full-disk and read-only cases (root and mount only, else skipped); unmounted after."""
    import shutil
    import subprocess

    d = tmp_path / "small"
    d.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(d)], capture_output=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
