"""Play a trained model live on a MIDI port: an endless stream, or call and response.

    python -m musicrnn.live --ckpt last.ckpt --port NAME            # or --virtual NAME
    python -m musicrnn.live --ckpt last.ckpt --port NAME --listen KEYBOARD --answer-notes 32
    python -m musicrnn.live --list-ports [--api jack]

Why it is built this way:
- All timing lives in ``player.Player``: its producer thread pulls notes from
  ``generate.generator_notes`` (so the model runs ahead of playback, ``--lookahead`` seconds of notes
  are scheduled at a time) and its playback loop, in the main thread so Ctrl-C reaches it, sends
  note-on/note-off on time, handles re-struck pitches and turns every note off on any exit. This file
  only wires the command line to a ``Generator`` and a ``Player``.
- A generated stream starts at its first note (the model's first step is measured from a prime that
  is never played), so music begins as soon as the port is open; an answer starts right after the
  pause that ended the player's phrase.
- CPython hands the GIL between threads every 5 ms by default, so a producer busy in Python between
  torch ops can delay a due note by up to 5 ms: we ask for 1 ms while playing. Torch runs one
  intra-op thread (a single-note step gains nothing from more, and idle OpenMP workers spin on the
  cores the playback thread needs). Both are restored on return (``main`` is also called in-process).
- ``--listen``: the phrase played on the input port (until ``--pause`` seconds of silence) is the
  prime. A phrase shorter than the model's ``seq_length`` is used as it is (the model gets less
  context; we never pad with invented notes, see ``generate``), and the answer says so on stderr.
- SIGTERM is handled like Ctrl-C (notes off, summary), so a killed session leaves no hanging note.
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from musicrnn.errors import ConfigError, cli_main
from musicrnn.cli.options import (add_checkpoint_arg, add_prime_args, add_sampling_args, choose_prime,
                                  load_checkpoint_net, set_threads)


@dataclass
class LiveSummary:
    """What was played, over all rounds: the figures of the one-line summary, and every message sent."""

    notes: int = 0
    underruns: int = 0
    rounds: int = 0
    interrupted: bool = False
    onset_error_ms: list[float] = field(default_factory=list)  # send - due time per note-on (PlaybackStats')
    sent: list = field(default_factory=list)  # player.SentMessage, in send order

    def add(self, player) -> None:
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m musicrnn.live", description=__doc__.split("\n")[0])
    add_checkpoint_arg(p)
    dst = p.add_mutually_exclusive_group()
    dst.add_argument("--port", default=None, help="MIDI output port (exact name or unique part of it; "
                                                  "default: the first one)")
    dst.add_argument("--virtual", default=None, help="create a virtual output port of this name instead")
    p.add_argument("--api", default=None, help="MIDI backend: alsa | jack | coremidi | winmm "
                                               "(default: the first that works)")
    p.add_argument("--list-ports", action="store_true", help="print the output and input ports and exit")
    p.add_argument("--channel", type=int, default=1, help="MIDI channel 1..16 (default 1)")
    p.add_argument("--lookahead", type=float, default=0.5, help="seconds of notes scheduled ahead (default 0.5)")
    p.add_argument("--speed", type=float, default=1.0, help="tempo factor: 2 plays twice as fast (default 1)")
    add_prime_args(p)
    p.add_argument("--num-notes", type=int, default=None, help="notes to play (default: until Ctrl-C)")
    lis = p.add_mutually_exclusive_group()
    lis.add_argument("--listen", default=None, metavar="PORT",
                     help="call and response: listen to this MIDI input port, answer each phrase")
    lis.add_argument("--listen-virtual", default=None, metavar="NAME",
                     help="like --listen, on a new virtual input port musicrnn-in:NAME that a keyboard "
                          "connects to")
    p.add_argument("--pause", type=float, default=1.5, help="with --listen: seconds of silence that end "
                                                             "a phrase (default 1.5)")
    p.add_argument("--answer-notes", type=int, default=32, help="with --listen: notes per answer (default 32)")
    p.add_argument("--rounds", type=int, default=None, help="with --listen: stop after N answers "
                                                             "(default: until Ctrl-C)")
    add_sampling_args(p)
    return p


def _check_args(a: argparse.Namespace) -> None:
    listen = a.listen is not None or a.listen_virtual is not None
    if a.num_notes is not None and a.num_notes < 1:
        raise ConfigError(f"--num-notes must be >= 1, got {a.num_notes}")
    if not 1 <= a.channel <= 16:
        raise ConfigError(f"--channel must be 1..16, got {a.channel}")
    if not (a.lookahead > 0 and np.isfinite(a.lookahead)):
        raise ConfigError(f"--lookahead must be > 0 seconds, got {a.lookahead}")
    if not (a.speed > 0 and np.isfinite(a.speed)):
        raise ConfigError(f"--speed must be > 0, got {a.speed}")
    if not (a.pause > 0 and np.isfinite(a.pause)):
        raise ConfigError(f"--pause must be > 0 seconds, got {a.pause}")
    if a.answer_notes < 1:
        raise ConfigError(f"--answer-notes must be >= 1, got {a.answer_notes}")
    if a.rounds is not None and a.rounds < 1:
        raise ConfigError(f"--rounds must be >= 1, got {a.rounds}")
    if listen and (a.prime or a.prime_split or a.num_notes is not None):
        raise ConfigError("with --listen the played phrase is the prime and --answer-notes sets the length "
                          "— drop --prime/--prime-split/--num-notes")
    if not listen and a.rounds is not None:
        raise ConfigError("--rounds counts call-and-response answers — use it with --listen (or use --num-notes)")


def print_ports(api: str | None) -> None:
    """Both directions on one backend: outputs are what --port takes, inputs what --listen takes."""
    from musicrnn.live import ports as mp

    chosen = mp.choose_api(api)
    outs, ins = mp.list_ports(chosen), mp.list_input_ports(chosen)
    print(f"MIDI backend: {chosen} (compiled: {', '.join(mp.compiled_apis())})")
    for title, ports in (("output ports (--port)", outs), ("input ports (--listen)", ins)):
        print(f"{title}:")
        print("\n".join(f"  {p}" for p in ports) if ports else "  (none)")


def from_first_note(notes: Iterable[tuple], speed: float = 1.0) -> Iterator[tuple]:
    """Shift a note stream so its first note starts at 0 (playback starts with the music), and divide
    its times by ``speed`` (2 = twice as fast)."""
    first = None
    for p, s, e, v in notes:
        if first is None:
            first = s
        yield p, (s - first) / speed, (e - first) / speed, v


def _play(out, source: Iterable[tuple], a: argparse.Namespace, summary: LiveSummary) -> None:
    """One Player run; its figures go into ``summary`` even when Ctrl-C ends it (then re-raised)."""
    from musicrnn.live.player import Player

    player = Player(out, source, channel=a.channel - 1, lookahead_s=a.lookahead)
    try:
        player.play()
    finally:
        summary.add(player)


def _stream(out, model, a: argparse.Namespace, device, summary: LiveSummary, info: list[str]) -> None:
    from musicrnn.sampling import generator as G

    prime, composer = choose_prime(a, model, info)
    gen = G.Generator(model, a.temperature, a.top_k, a.top_p, a.seed, device, composer)
    gen.start(prime)
    if a.seed is None:
        info.append(f"seed {gen.seed} (pass --seed {gen.seed} to repeat)")
    length = f"{a.num_notes} notes" if a.num_notes else "until Ctrl-C"
    info.append(f"playing to {out.name} on {out.api}: {length}")
    print("\n".join(info), file=sys.stderr, flush=True)
    _play(out, from_first_note(G.generator_notes(gen, a.num_notes), a.speed), a, summary)


def _call_and_response(out, inp, model, a: argparse.Namespace, device, summary: LiveSummary,
                       info: list[str]) -> None:
    from musicrnn.sampling import generator as G
    from musicrnn.live.recording import record_phrase

    L = model.seq_length
    gen = G.Generator(model, a.temperature, a.top_k, a.top_p, a.seed, device, a.composer)
    if a.seed is None:
        info.append(f"seed {gen.seed} (pass --seed {gen.seed} to repeat)")
    info.append(f"answering on {out.name}; listening on {inp.name} on {inp.api} "
                f"({a.pause:g} s of silence ends a phrase)")
    print("\n".join(info), file=sys.stderr, flush=True)
    while a.rounds is None or summary.rounds < a.rounds:
        phrase = record_phrase(inp, pause_s=a.pause)
        if not len(phrase):
            continue
        short = (f" (fewer than the model's {L}: answering from less context)" if len(phrase) < L
                 else f" (the last {L} are the prime)" if len(phrase) > L else "")
        print(f"heard {len(phrase)} notes{short}; answering with {a.answer_notes}", file=sys.stderr, flush=True)
        gen.start(phrase)
        _play(out, from_first_note(G.generator_notes(gen, a.answer_notes), a.speed), a, summary)
        summary.rounds += 1


class _Realtime:
    """1 ms GIL switch interval, ``threads`` torch threads (--threads, default 1), SIGTERM and SIGINT -> KeyboardInterrupt (SIGINT even
    when a background launch made the process ignore it); all restored on exit."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads

    def __enter__(self) -> "_Realtime":
        import torch

        self._switch, self._threads = sys.getswitchinterval(), torch.get_num_threads()
        sys.setswitchinterval(0.001)
        set_threads(self.threads)
        self._term = self._int = None
        if threading.current_thread() is threading.main_thread():
            self._term = signal.signal(signal.SIGTERM, self._on_term)
            self._int = signal.signal(signal.SIGINT, signal.default_int_handler)
        return self

    @staticmethod
    def _on_term(signum, frame) -> None:
        raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        import torch

        sys.setswitchinterval(self._switch)
        torch.set_num_threads(self._threads)
        if self._term is not None:
            signal.signal(signal.SIGTERM, self._term)
            signal.signal(signal.SIGINT, self._int)


@cli_main
def main(argv: list[str] | None = None) -> LiveSummary | None:
    a = _parser().parse_args(argv)
    if a.list_ports:
        print_ports(a.api)
        return None
    _check_args(a)

    from musicrnn.live import ports as mp

    listen = a.listen is not None or a.listen_virtual is not None
    summary = LiveSummary()
    # ports first, before torch is even imported: a wrong port name is the commonest mistake
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(mp.open_output(a.port, a.virtual, a.api))
        inp = (stack.enter_context(mp.open_input(a.listen, a.listen_virtual, out.api, client="musicrnn-in"))
               if listen else None)
        from musicrnn.sampling import generator as G

        device = G.resolve_device(a.device)
        ckpt, model = load_checkpoint_net(a.ckpt, device)
        info = [f"using checkpoint {ckpt}"] if a.ckpt not in (None, "pretrained") and str(ckpt) != a.ckpt else []
        with _Realtime(a.threads):
            try:
                if listen:
                    _call_and_response(out, inp, model, a, device, summary, info)
                else:
                    _stream(out, model, a, device, summary, info)
            except KeyboardInterrupt:  # the normal way to end an endless stream: summary, then exit 130
                summary.interrupted = True
                print(summary.line(), flush=True)
                raise
    print(summary.line(), flush=True)
    return summary


if __name__ == "__main__":
    main()
