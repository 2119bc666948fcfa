"""The one error type for bad user input, and the one place it is turned into a CLI message.

Every module raises ``MusicRNNError`` (or a subclass) for a problem the *user* can fix: a damaged
MIDI file, a missing folder, a checkpoint of another model. Each CLI wraps its ``main`` with
``cli_main`` so the user sees exactly one line ``error: <what> — <fix>`` and a non-zero exit code,
never a traceback. Bugs (anything else) still raise normally.
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


class MusicRNNError(Exception):
    """A problem with the user's input that they can fix. The message names the thing and the fix."""


class MidiError(MusicRNNError):
    """A MIDI file that cannot be read safely (damaged, empty, truncated, not MIDI at all)."""


class ConfigError(MusicRNNError):
    """A configuration or command-line value that cannot work."""


class CheckpointError(MusicRNNError):
    """A checkpoint that is missing, truncated, unsafe or of another model."""


EXIT_USER_ERROR = 2


def cli_main(fn: F) -> F:
    """Decorate a CLI entry point: MusicRNNError -> one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MusicRNNError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
