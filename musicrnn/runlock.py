"""One training run per checkpoint folder, and temp files that name the process that wrote them.

Two ``fit`` runs writing ``last.ckpt`` into one folder would overwrite (and once, delete) each
other's files. ``hold(folder)`` takes ``folder/.musicrnn-fit.lock``: an ``flock`` held for the whole
run, with the holder's PID written inside so the refusal can name it. The kernel drops an ``flock``
when its process dies, however it dies, so a lock left by a killed run (a dead PID) is simply taken
over; there is no stale-lock guessing.

Temp files of atomic writes carry the writer's PID (``.last.ckpt.<pid>.<random>.tmp``, see
``io_utils.atomic_write``); ``stale_temps`` lists the ones a run may delete: its own, and those of
processes that are no longer alive.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import CheckpointError

LOCK_NAME = ".musicrnn-fit.lock"
LEGACY_TEMP_AGE_S = 600.0  # temp files without a PID (older versions): removed once this old


def pid_alive(pid: int) -> bool:
    """True if a process with this PID exists (ours or another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "unknown"
    return text.split()[0] if text else "unknown"


@contextlib.contextmanager
def hold(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold the checkpoint folder's lock for the ``with`` block; CheckpointError if another live run
    holds it. The lock file is removed on exit."""
    folder = Path(folder)
    path = folder / LOCK_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"checkpoint folder {folder} cannot be created ({e.strerror}) — pass "
                              f"--checkpoint.dirpath to a writable folder") from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise CheckpointError(f"checkpoint folder {folder} is not writable ({e.strerror}) — pass "
                                  f"--checkpoint.dirpath to a writable folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CheckpointError(
                f"checkpoint folder {folder} is in use by another musicrnn.fit run (PID {_holder(path)}) — "
                f"wait for it to finish or pass a different --checkpoint.dirpath") from None
        # the previous holder may have removed the file between our open and our flock: lock the new one
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError as e:  # e.g. a full disk: no lock without the holder's PID in it
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
        raise CheckpointError(f"cannot write the run lock in {folder} ({e.strerror}) — free space there or pass "
                              f"--checkpoint.dirpath to a folder with room") from None
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still locked: a waiting run then locks a fresh file (inode check above)
        os.close(fd)


def temp_pid(name: str, target: str) -> int | None:
    """The writer's PID in the temp name ``.{target}.{pid}.{random}.tmp``; None for other names."""
    middle = name[len(target) + 2 : -len(".tmp")]
    pid, sep, _ = middle.partition(".")
    return int(pid) if sep and pid.isdigit() else None


def stale_temps(path: str | os.PathLike) -> list[str]:
    """Temp files beside ``path`` left by this process or by dead ones (never a live run's)."""
    path = os.fspath(path)
    folder, target = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    out = []
    for tmp in glob.glob(os.path.join(folder, f".{glob.escape(target)}.*.tmp")):
        pid = temp_pid(os.path.basename(tmp), target)
        if pid is None:  # an older version's temp file: no owner to ask, go by age
            with contextlib.suppress(OSError):
                if time.time() - os.stat(tmp).st_mtime > LEGACY_TEMP_AGE_S:
                    out.append(tmp)
        elif pid == os.getpid() or not pid_alive(pid):
            out.append(tmp)
    return out
