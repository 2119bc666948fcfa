"""The files of one run, written all or none, with errors that name the real file.

Why: ``sample`` writes up to three files per sample (MIDI, PNG, WAV). Written one by one, a full disk
at the PNG left the MIDI behind (exit 2, but half the output on disk), and the error named the temp
file ``.x.mid.<rand>.tmp`` or the MIDI instead of the file that failed. And the folder was only tried
after generation, which can take hours.

- ``check_folder`` runs before generation: it creates the folder, writes and deletes a probe file in
  it, and compares a bound on the MIDI bytes with the free space. Each failure is one line naming
  the folder and the fix.
- ``Staged`` hands out a temp path per output (``.NAME.<rand>.tmp.EXT`` in the same folder, so
  renames are atomic and tools that look at the suffix still work), and ``commit`` renames them all
  once every file is complete; any failure removes every temp file and renames nothing, so earlier
  files of the same names stay exactly as they were.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from typing_extensions import Self

from musicrnn.errors import MusicRNNError
from musicrnn.io_utils import file_mode

MIDI_BYTES_PER_NOTE = 10  # note-on + note-off: 2 x (delta <= 4 bytes + 2 data bytes) - running status
MIDI_OVERHEAD = 256  # headers, tempo, track name, end of track
FIX = "free some space there or choose another --out"


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def check_folder(folder: Path, midi_notes: int = 0, what: str = "--out") -> None:
    """Fail now, before any work, if ``folder`` cannot hold this run's MIDI files.

    midi_notes: notes over all MIDI files (bounds their size, ``MIDI_BYTES_PER_NOTE`` each).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise MusicRNNError(f"{what}: {folder} exists and is not a folder — choose another {what}") from None
    except OSError as e:
        raise MusicRNNError(f"{what}: cannot create folder {folder} ({_reason(e)}) — choose another {what}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".musicrnn-probe.", suffix=".tmp", dir=folder)
        try:
            os.write(fd, b"\0")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise MusicRNNError(f"{what}: cannot write in {folder} ({_reason(e)}) — {FIX}") from None
    need = midi_notes * MIDI_BYTES_PER_NOTE + MIDI_OVERHEAD
    free = shutil.disk_usage(folder).free
    if need > free:
        raise MusicRNNError(f"{what}: {folder} has {_kb(free)} free but the MIDI output needs up to "
                            f"{_kb(need)} — {FIX}")


def _kb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


class Staged:
    """Temp files for a set of outputs; ``commit()`` renames them all, ``abort()`` removes them all.

    Use as a context manager: leaving it with an exception aborts; ``OSError`` inside ``writing(path)``
    becomes one ``MusicRNNError`` line naming ``path`` (never the temp file).
    """

    def __init__(self) -> None:
        self._temps: dict[Path, Path] = {}  # final -> temp, in the order written

    def temp(self, path: str | os.PathLike) -> Path:
        """A new empty temp file beside ``path`` with the same suffix (e.g. ``.s.png`` -> ``.s.<rand>.tmp.png``)."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
        os.close(fd)
        self._temps[path] = Path(tmp)
        return Path(tmp)

    def temp_of(self, path: str | os.PathLike) -> Path:
        """The temp file already handed out for ``path`` (e.g. the MIDI a WAV is rendered from)."""
        return self._temps[Path(path)]

    @contextlib.contextmanager
    def writing(self, path: str | os.PathLike) -> Iterator[Path]:
        """Yield the temp path to write ``path``'s content to; write failures name ``path``."""
        path = Path(path)
        try:
            yield self.temp(path)
        except OSError as e:
            raise MusicRNNError(f"cannot write {path}: {_reason(e)} — {FIX} (no file of this run was kept)") from None

    def commit(self) -> list[Path]:
        """fsync every temp file, then rename each onto its final name; returns the final paths."""
        try:
            for final, tmp in self._temps.items():  # noqa: B007 — ``final`` names the failed file below
                os.chmod(tmp, file_mode())  # mkstemp's 0600 -> the user's umask
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
        except OSError as e:
            self.abort()
            raise MusicRNNError(f"cannot write {final}: {_reason(e)} — {FIX}") from None
        done = []
        for final, tmp in self._temps.items():
            os.replace(tmp, final)  # same folder: atomic, needs no space
            done.append(final)
        self._temps.clear()
        return done

    def abort(self) -> None:
        for tmp in self._temps.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._temps.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

