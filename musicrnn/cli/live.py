"""Play a trained model live on a MIDI port: an endless stream, or call and response.

    python -m musicrnn.live --ckpt last.ckpt --port NAME            # or --virtual NAME
    python -m musicrnn.live --ckpt last.ckpt --port NAME --listen KEYBOARD --answer-notes 32
    python -m musicrnn.live --list-ports [--api jack]

This file parses the options, opens the ports (before torch is even imported: a wrong port name is
the commonest mistake), loads the model, starts a ``Generator`` and hands over to
``musicrnn.realtime.session``, where all real-time behaviour lives (timing, signals, the summary);
then it prints the summary. ``--listen``: the phrase played on the input port (until ``--pause``
seconds of silence) is the prime. ``--virtual`` on JACK waits for a connection before the first note
(``--connect-timeout``); ``--count-in`` adds silent seconds before it on any port. Ctrl-C and SIGTERM
end a session with every note off and the summary; the exit code is 130 for Ctrl-C, 143 for SIGTERM.
"""
from __future__ import annotations

import argparse
import contextlib
import sys

import numpy as np

from musicrnn.cli.options import (
    add_checkpoint_arg,
    add_prime_args,
    add_sampling_args,
    choose_prime,
    load_checkpoint_net,
)
from musicrnn.errors import ConfigError, cli_main
from musicrnn.realtime import ports as mp
from musicrnn.realtime import session
from musicrnn.realtime.session import LiveSummary, Terminated


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
    p.add_argument("--connect-timeout", type=float, default=60.0,
                   help="with --virtual on JACK: seconds to wait for something to connect before the first "
                        "note (default 60; 0 = play at once)")
    p.add_argument("--count-in", type=float, default=0.0,
                   help="seconds of silence before the first note, after the connection (default 0)")
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
    for opt, value in (("--connect-timeout", a.connect_timeout), ("--count-in", a.count_in)):
        if not (value >= 0 and np.isfinite(value)):
            raise ConfigError(f"{opt} must be >= 0 seconds, got {value}")
    if not (a.pause > 0 and np.isfinite(a.pause)):
        raise ConfigError(f"--pause must be > 0 seconds, got {a.pause}")
    if a.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {a.threads}")
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
    chosen = mp.choose_api(api)
    outs, ins = mp.list_ports(chosen), mp.list_input_ports(chosen)
    print(f"MIDI backend: {chosen} (compiled: {', '.join(mp.compiled_apis())})")
    for title, ports in (("output ports (--port)", outs), ("input ports (--listen)", ins)):
        print(f"{title}:")
        print("\n".join(f"  {p}" for p in ports) if ports else "  (none)")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _run(a: argparse.Namespace, summary: LiveSummary) -> None:
    """Open the ports, load the model, play; the ports close (drained, every note off) on any exit."""
    listen = a.listen is not None or a.listen_virtual is not None
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(mp.open_output(a.port, a.virtual, a.api))
        inp = (stack.enter_context(mp.open_input(a.listen, a.listen_virtual, out.api, client="musicrnn-in"))
               if listen else None)
        from musicrnn.sampling import generator as G  # torch: only once the ports are known to work

        device = G.resolve_device(a.device)
        ckpt, model = load_checkpoint_net(a.ckpt, device)
        info = [f"using checkpoint {ckpt}"] if a.ckpt not in (None, "pretrained") and str(ckpt) != a.ckpt else []
        if listen:
            prime, composer = None, a.composer
        else:
            prime, composer = choose_prime(a, model, info)
        gen = G.Generator(model, a.temperature, a.top_k, a.top_p, a.seed, device, composer)
        if a.seed is None:
            info.append(f"seed {gen.seed} (pass --seed {gen.seed} to repeat)")
        if listen:
            info.append(f"answering on {out.name}; listening on {inp.name} on {inp.api} "
                        f"({a.pause:g} s of silence ends a phrase)")
        else:
            gen.start(prime)
            info.append(f"playing to {out.name} on {out.api}: "
                        f"{f'{a.num_notes} notes' if a.num_notes else 'until Ctrl-C'}")
        _say("\n".join(info))
        session.wait_for_listener(out, a.connect_timeout, a.count_in, _say)
        play = dict(speed=a.speed, channel=a.channel - 1, lookahead_s=a.lookahead)
        with session.realtime_threads(a.threads):
            if listen:
                session.call_and_response(out, inp, gen, summary, _say, a.answer_notes, a.pause, a.rounds, **play)
            else:
                session.stream(out, gen, summary, a.num_notes, **play)


@cli_main
def main(argv: list[str] | None = None) -> LiveSummary | None:
    a = _parser().parse_args(argv)
    if a.list_ports:
        print_ports(a.api)
        return None
    _check_args(a)
    summary = LiveSummary()
    try:
        with session.StopSignals():  # until the ports are closed: a second signal cannot cut the clean-up
            _run(a, summary)
    except KeyboardInterrupt as e:  # the normal way to end an endless stream: the summary, then 130 or 143
        summary.interrupted = True
        print(summary.line(), flush=True)
        if isinstance(e, Terminated):
            print("terminated", file=sys.stderr)
            sys.exit(session.EXIT_TERMINATED)
        raise
    print(summary.line(), flush=True)
    return summary


if __name__ == "__main__":
    main()
