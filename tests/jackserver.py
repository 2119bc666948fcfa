"""A headless JACK server (dummy driver, no sound card) for the tests (``conftest.jack``) and
``benchmarks/live_latency.py``."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

from musicrnn.errors import MusicRNNError
from musicrnn.realtime.ports import make_port


def _jack_server_answers(name: str) -> bool:
    saved = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        make_port("out", "jack", "musicrnn-wait").delete()
        return True
    except MusicRNNError:
        return False
    finally:
        if saved is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = saved


@contextlib.contextmanager
def dummy_jack_server(name: str = "musicrnn-dummy", rate: int = 48000, period: int = 256,
                      timeout_s: float = 10.0) -> Iterator[str]:
    """Run ``jackd -n NAME -r -S -d dummy -r RATE -p PERIOD -w USEC`` for the ``with`` block; yield NAME.

    NAME is ``name``, or ``name-1``..``name-3`` if a server of that name is already running (another
    test run on the same machine). Names are reused on purpose: libjack keeps a registry of at most
    8 servers in /dev/shm and reclaims a dead server's slot only when its *name* is started again.
    Sets ``JACK_DEFAULT_SERVER=NAME`` (rtmidi clients of this process connect to it, not to someone
    else's server) and ``JACK_NO_START_SERVER=1``; both are restored after. The first ``-r`` means
    "no realtime scheduling", the second is the sample rate. ``-S`` (synchronous mode) makes the
    server wait for every client each cycle: on a loaded machine without realtime scheduling a late
    client otherwise loses that cycle's MIDI (seen ~1 in 12 runs at load 7 on 2 cores). ``-w`` makes
    the dummy driver's cycle one period (its default is 21333 us, the cycle of 1024 frames at 48 kHz).
    """
    jackd = shutil.which("jackd")
    if jackd is None:
        raise MusicRNNError("jackd not found — install it (Debian/Ubuntu: apt-get install jackd2)")
    names = [name] + [f"{name}-{i}" for i in range(1, 4)]
    free = [n for n in names if not _jack_server_answers(n)]
    if not free:
        raise MusicRNNError(f"JACK servers {', '.join(names)} are all running — stop one (or wait)")
    name = free[0]
    wait_us = int(round(period * 1e6 / rate))
    cmd = [jackd, "-n", name, "-r", "-S", "-d", "dummy", "-r", str(rate), "-p", str(period), "-w", str(wait_us)]
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        os.environ["JACK_DEFAULT_SERVER"] = name
        os.environ["JACK_NO_START_SERVER"] = "1"
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-2:]
                raise MusicRNNError(f"jackd did not start ({' '.join(cmd)}): {' | '.join(tail)}")
            if _jack_server_answers(name):
                break
            time.sleep(0.05)
        yield name
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()  # jackd exits cleanly on SIGTERM and frees its /dev/shm entries
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
