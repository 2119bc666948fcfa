"""Small filesystem helpers: atomic writes and the cache folder."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def cache_dir() -> Path:
    """Where caches, repaired copies and outputs go: $MUSICRNN_CACHE, else ~/.cache/musicrnn.

    Never beside the data: the dataset folder may be read-only (it is in CI).
    """
    root = os.environ.get("MUSICRNN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "musicrnn"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_mode() -> int:
    """The mode a plain ``open`` would give a new file (0666 less the umask); mkstemp gives 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Write ``path`` all-or-nothing: a temp file in the same folder, fsync, then ``os.replace``.

    A crash mid-write leaves the previous file (or no file) in place, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the PID in the name tells a later run whether the writer is still alive (runlock.stale_temps)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.chmod(tmp, file_mode())  # a user's files follow their umask, not mkstemp's 0600
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
