"""Failed writes as one clear line: a full disk for checkpoints, an unwritable cache folder.

``atomic_write`` already keeps the previous file when a write fails; these helpers turn the
``OSError`` into a ``MusicRNNError`` that names the folder, what was needed and the fix, so the CLI
prints one ``error:`` line instead of a traceback. Errors that are not about space or permission
are reported the same way, with the system's reason.
"""
from __future__ import annotations

import errno
import os
import shutil

from .errors import CheckpointError, ConfigError
from .memory import size_text

NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
MARGIN = 64 * 1024  # room a checkpoint write needs beyond its bytes (folder entries, fs overhead)


def mb(n: float) -> str:
    """A size for a message, 3 significant digits (``memory.size_text``): 149 KB, 1.23 MB."""
    return size_text(n)


def need_and_free(need: int, free: int) -> tuple[str, str]:
    """The two sizes of a "needs X, Y free" message, in exact bytes when the short forms would look
    equal (a short "needs 0.1 MB, 0.1 MB free" said nothing)."""
    a, b = size_text(need), size_text(free)
    return (a, b) if a != b else (f"{need:,} bytes", f"{free:,} bytes")


def free_bytes(folder: str | os.PathLike) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _no_space(folder: str, path: str, need: int) -> CheckpointError:
    free = free_bytes(folder)
    needed, left = need_and_free(need + MARGIN, free) if free is not None else (mb(need + MARGIN), "no space")
    kept = (f"; the previous {os.path.basename(path)} is kept" if os.path.isfile(path)
            else "; nothing was written")
    return CheckpointError(f"checkpoint folder {folder} is full: {os.path.basename(path)} needs {needed}, "
                           f"{left} free — free space there or pass --checkpoint.dirpath to a folder with room{kept}")


def check_room(folder: str, path: str, need: int) -> None:
    """Refuse a checkpoint write that cannot fit (before the temp file fills the disk).

    The old file is replaced only after the new one is complete, so both must fit at once.
    """
    free = free_bytes(folder)
    if free is not None and free < need + MARGIN:
        raise _no_space(folder, path, need)


def save_error(folder: str, path: str, need: int, e: OSError) -> CheckpointError:
    """The one-line error for a checkpoint write that failed with ``e``."""
    if e.errno in NO_SPACE:
        return _no_space(folder, path, need)
    if e.errno in NOT_WRITABLE:
        return CheckpointError(f"checkpoint folder {folder} is not writable ({e.strerror}) — pass "
                               f"--checkpoint.dirpath to a writable folder")
    return CheckpointError(f"cannot write {path} ({e.strerror}) — check the folder {folder}")


def cache_error(folder: str | os.PathLike, e: OSError) -> ConfigError:
    """The one-line error for a note cache that cannot be written to ``folder``."""
    if e.errno in NO_SPACE:
        why = f"is full ({mb(free_bytes(folder) or 0)} free)"
    elif e.errno in NOT_WRITABLE:
        why = f"is not writable ({e.strerror})"
    else:
        why = f"cannot be written ({e.strerror})"
    return ConfigError(f"cache folder {folder} {why} — set MUSICRNN_CACHE (or --data.cache_dir) to a "
                       f"writable folder with room")


def destination_error(what: str, folder: str | os.PathLike, e: OSError, fix: str) -> ConfigError:
    """The one-line error for a write under ``folder`` (``what``: e.g. "repair destination") that failed
    with ``e``: full, not writable, or the system's reason."""
    where = f" ({e.filename})" if e.filename else ""
    if e.errno in NO_SPACE:
        free = free_bytes(folder)
        why = f"is full{where}: {mb(free)} free" if free is not None else f"is full{where}"
    elif e.errno in NOT_WRITABLE:
        why = f"is not writable ({e.strerror})"
    else:
        why = f"cannot be written{where} ({e.strerror})"
    return ConfigError(f"{what} {folder} {why} — {fix}")
