"""Live MIDI latency: stream N generated notes through a dummy JACK server and time their arrival.

    python benchmarks/live_latency.py [--notes 200] [--rate 20] [--gen-ms 0] [--stall-every 0]
    python benchmarks/live_latency.py --ckpt last.ckpt [--notes 200] [--speed 1]   # a real model, as live plays it

Starts ``jackd -n musicrnn-dummy -r -S -d dummy -r 48000 -p PERIOD -w USEC`` (Debian package jackd2), opens a
receiving client (``musicrnn.realtime.ports.open_input``) and plays the notes to it with ``Player``; the
notes come from a generator in the Player's producer thread that can be made slow (``--gen-ms`` per
note, or a 0.5 s stall every ``--stall-every`` notes) to show that slow generation costs underruns,
never bunched notes (the producer runs ahead, so a stall only underruns once generation is about as
slow as playback, e.g. ``--rate 20 --gen-ms 45 --stall-every 40``). With ``--ckpt`` the notes come
from that model exactly as ``python -m musicrnn.live`` streams them (bundled-sample prime, seeded,
1 ms GIL switch interval, one torch thread). Prints notes sent/received, onset error (receive time minus scheduled time:
JACK period + scheduling jitter) median/max in ms, send-side error, underruns.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the JACK dummy server fixture
from jackserver import dummy_jack_server  # noqa: E402
from musicrnn.realtime import ports  # noqa: E402
from musicrnn.realtime.player import Player  # noqa: E402

ON = 0x90


def notes(n: int, rate: float, gen_s: float, stall_every: int, seed: int = 0):
    """n notes at ``rate`` onsets/s on 8 pitches (re-strikes and overlaps), like a model's output."""
    rng = np.random.default_rng(seed)
    step = 1.0 / rate
    for i in range(n):
        if gen_s:
            time.sleep(gen_s)
        if stall_every and i and i % stall_every == 0:
            time.sleep(0.5)
        start = i * step + float(rng.uniform(0, 0.3 * step))
        yield (60 + int(rng.integers(0, 8)), start, start + float(rng.uniform(0.02, 0.5)),
               int(rng.integers(30, 120)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notes", type=int, default=200)
    ap.add_argument("--rate", type=float, default=20.0, help="note onsets per second")
    ap.add_argument("--period", type=int, default=256, help="JACK frames per period at 48 kHz")
    ap.add_argument("--gen-ms", type=float, default=0.0, help="simulated generation time per note")
    ap.add_argument("--stall-every", type=int, default=0, help="a 0.5 s generation stall every K notes")
    ap.add_argument("--ckpt", default=None, help="stream this model's notes instead of synthetic ones")
    ap.add_argument("--speed", type=float, default=1.0, help="with --ckpt: tempo factor, as live --speed")
    args = ap.parse_args()
    source = notes(args.notes, args.rate, args.gen_ms / 1e3, args.stall_every)
    realtime = contextlib.nullcontext()
    if args.ckpt:
        from musicrnn.cli.live import _Realtime, from_first_note
        from musicrnn.model.checkpoint import load_network
        from musicrnn.sampling import generator as G
        from musicrnn.sampling.primes import prime_bundled

        model = load_network(args.ckpt)
        gen = G.Generator(model, seed=0)
        gen.start(prime_bundled(seed=0, seq_length=model.seq_length))
        source = from_first_note(G.generator_notes(gen, args.notes), args.speed)
        realtime = _Realtime()

    with dummy_jack_server(period=args.period) as server:
        with ports.open_input(virtual="in", api="jack", client="bench-receiver", poll_s=0.0002) as rx, \
                ports.open_output("bench-receiver:in", api="jack") as out:
            time.sleep(0.1)
            player = Player(out, source)
            with realtime:
                stats = player.play()
            time.sleep(0.2)  # let the last JACK cycle deliver
            got = []
            while (ev := rx.get(timeout=0)) is not None:
                got.append(ev)
    sent = [m for m in player.sent]
    recv_msgs = [m for _, m in got]
    sent_on = [m for m in sent if m.message[0] & 0xF0 == ON]
    recv_on = [t for t, m in got if m[0] & 0xF0 == ON]
    intact = recv_msgs == [list(m.message) for m in sent]
    err = (np.array(recv_on) - np.array([m.scheduled for m in sent_on])) * 1e3 if intact else np.array([np.nan])
    print(f"server {server}: period {args.period} frames = {args.period / 48:.2f} ms")
    print(f"notes sent {stats.notes}, note-ons received {len(recv_on)}, "
          f"messages sent {len(sent)} received {len(got)}, identical and in order: {intact}")
    print(f"onset error (received - scheduled): median {np.median(err):.2f} ms, "
          f"p95 {np.percentile(err, 95):.2f} ms, max {err.max():.2f} ms")
    print(f"send-side error: median {stats.onset_error_median_ms:.3f} ms, max {stats.onset_error_max_ms:.3f} ms")
    print(f"underruns {stats.underruns} (clock shifted {stats.shifted_s:.3f} s)")


if __name__ == "__main__":
    main()
