"""A live session: stream a generator's notes to a port, or answer phrases played on an input port.

``python -m musicrnn.live`` (``musicrnn.cli.live``) parses its options, opens the ports, loads the
model and calls these; all real-time behaviour lives here and in ``player``:

- ``StopSignals``: Ctrl-C (SIGINT) and SIGTERM stop the session the same way (every note off, the
  summary), SIGTERM then exits 143 (``Terminated``), Ctrl-C 130. Only the *first* signal raises: a
  second one that arrives while the session stops (draining JACK, All Notes Off, closing the port)
  is remembered, never raised, so it cannot cut the clean-up short and leave notes hanging.
- ``realtime_threads``: CPython hands the GIL between threads every 5 ms by default, so a producer
  busy in Python between torch ops can delay a due note by up to 5 ms: 1 ms while playing. Torch
  runs ``threads`` intra-op threads (one by default: a single-note step gains nothing from more, and
  idle OpenMP workers spin on the cores the playback thread needs). Both are restored on exit.
- A generated stream starts at its first note (``from_first_note``: the model's first step is
  measured from a prime that is never played); an answer starts right after the pause that ended
  the player's phrase.
- ``wait_for_listener``: notes sent to a virtual port before anything is connected to it are lost,
  so on JACK (where connections can be seen) the first note waits for a connection; everywhere a
  count-in of silent seconds can give the listener time.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from musicrnn.errors import MusicRNNError
from musicrnn.realtime.player import Player
from musicrnn.realtime.recording import record_phrase

EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: what a shell reports for a process ended by SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM during a session: it stops as on Ctrl-C, then the process exits ``EXIT_TERMINATED``."""


@dataclass
class LiveSummary:
    """What was played, over all rounds: the figures of the one-line summary, and every message sent."""

    notes: int = 0
    underruns: int = 0
    rounds: int = 0
    interrupted: bool = False
    onset_error_ms: list[float] = field(default_factory=list)  # send - due time per note-on (PlaybackStats')
    sent: list = field(default_factory=list)  # player.SentMessage, in send order

    def add(self, player: Player) -> None:
        self.notes += player.notes_played
        self.underruns += player.underruns
        self.onset_error_ms.extend((player.onset_errors() * 1e3).tolist())
        self.sent.extend(player.sent)

    def line(self) -> str:
        err = np.array(self.onset_error_ms)
        timing = (f"onset error median {np.median(err):.2f} ms, max {err.max():.2f} ms" if len(err)
                  else "onset error n/a")
        rounds = f" in {self.rounds} rounds" if self.rounds else ""
        stop = " (stopped)" if self.interrupted else ""
        return f"live: sent {self.notes} notes{rounds}, {self.underruns} underruns, {timing}{stop}"


class StopSignals:
    """SIGINT -> KeyboardInterrupt (even where a background launch made the process ignore it), SIGTERM
    -> ``Terminated``; the first signal only, later ones are counted in ``ignored``. Restored on exit.
    Outside the main thread (where Python cannot install handlers) it does nothing."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.ignored = 0
        self._saved: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum, frame) -> None:
        if self.first is not None:  # already stopping: let the clean-up finish
            self.ignored += 1
            return
        self.first = signum
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()


@contextlib.contextmanager
def realtime_threads(threads: int = 1) -> Iterator[None]:
    """1 ms GIL switch interval and ``threads`` torch threads for the block (see the module doc)."""
    import torch

    switch, before = sys.getswitchinterval(), torch.get_num_threads()
    sys.setswitchinterval(0.001)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        sys.setswitchinterval(switch)
        torch.set_num_threads(before)


def from_first_note(notes: Iterable[tuple], speed: float = 1.0) -> Iterator[tuple]:
    """Shift a note stream so its first note starts at 0 (playback starts with the music), and divide
    its times by ``speed`` (2 = twice as fast)."""
    first = None
    for p, s, e, v in notes:
        if first is None:
            first = s
        yield p, (s - first) / speed, (e - first) / speed, v


def wait_for_listener(out, timeout_s: float, count_in_s: float, say: Callable[[str], None]) -> None:
    """Before the first note: on a virtual JACK port, wait until something is connected to it (at most
    ``timeout_s``; 0 = do not wait; MusicRNNError when nothing came); then ``count_in_s`` of silence."""
    if out.virtual is not None and timeout_s > 0:
        if out.listeners() is None:
            say(f"{out.api} cannot tell when something connects to {out.name}: connect it now "
                f"(--count-in S gives you S seconds)")
        elif not out.listeners():
            say(f"waiting up to {timeout_s:g} s for a connection to {out.name}")
            deadline = time.monotonic() + timeout_s
            while not out.listeners():
                if time.monotonic() > deadline:
                    raise MusicRNNError(f"nothing connected to {out.name} within {timeout_s:g} s — connect a "
                                        f"synth to it (e.g. `jack_connect {out.name} SYNTH:PORT`), raise "
                                        f"--connect-timeout, or pass --connect-timeout 0 to play at once")
                time.sleep(0.05)
    if count_in_s > 0:
        time.sleep(count_in_s)


def play(out, source: Iterable[tuple], summary: LiveSummary, channel: int = 0, lookahead_s: float = 0.5) -> None:
    """One Player run; its figures go into ``summary`` even when a signal ends it (then re-raised)."""
    player = Player(out, source, channel=channel, lookahead_s=lookahead_s)
    try:
        player.play()
    finally:
        summary.add(player)


def stream(out, gen, summary: LiveSummary, num_notes: int | None = None, speed: float = 1.0,
           channel: int = 0, lookahead_s: float = 0.5) -> None:
    """Play a started ``sampling.generator.Generator``'s notes (``num_notes``, None = until stopped)."""
    from musicrnn.sampling.generator import generator_notes

    play(out, from_first_note(generator_notes(gen, num_notes), speed), summary, channel, lookahead_s)


def call_and_response(out, inp, gen, summary: LiveSummary, say: Callable[[str], None], answer_notes: int = 32,
                      pause_s: float = 1.5, rounds: int | None = None, speed: float = 1.0, channel: int = 0,
                      lookahead_s: float = 0.5) -> None:
    """Answer each phrase played on ``inp`` (ended by ``pause_s`` of silence) with ``answer_notes``
    notes primed by it, ``rounds`` times (None = until stopped). A phrase shorter than the model's
    ``seq_length`` is used as it is (less context; never padded with invented notes) and ``say`` says so."""
    from musicrnn.sampling.generator import generator_notes

    L = gen.net.seq_length
    while rounds is None or summary.rounds < rounds:
        phrase = record_phrase(inp, pause_s=pause_s)
        if not len(phrase):
            continue
        short = (f" (fewer than the model's {L}: answering from less context)" if len(phrase) < L
                 else f" (the last {L} are the prime)" if len(phrase) > L else "")
        say(f"heard {len(phrase)} notes{short}; answering with {answer_notes}")
        gen.start(phrase)
        play(out, from_first_note(generator_notes(gen, answer_notes), speed), summary, channel, lookahead_s)
        summary.rounds += 1
