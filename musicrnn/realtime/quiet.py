"""Silence file descriptor 2 while probing MIDI backends: libjack and alsa-lib print several lines
per failed connect, which would bury the one ``error:`` line that says what to do."""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """fd 2 goes to /dev/null for the ``with`` block (C libraries write there, not to ``sys.stderr``)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
