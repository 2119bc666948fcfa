"""Option groups shared by the command lines (sample, live, evaluate), and what they resolve to:
the checkpoint (``--ckpt``), the prime (``--prime`` / ``--prime-split``) and sampling (``--temperature``
... ``--threads``). One place, so the CLIs agree and never import each other."""
from __future__ import annotations

import argparse
import sys

from musicrnn.runfiles import CHECKPOINT_DIR, LAST, LAST_CHECKPOINT
from musicrnn.sampling.defaults import DEFAULT_TEMPERATURE, DEFAULT_TIMING_TEMPERATURE, DEFAULT_TOP_P


def add_checkpoint_arg(p: argparse.ArgumentParser) -> None:
    last = f"{CHECKPOINT_DIR}/{LAST_CHECKPOINT}"
    p.add_argument("--ckpt", default=None,
                   help=f"checkpoint written by musicrnn.fit (also looked up in {CHECKPOINT_DIR}/), a run folder (its "
                        f"{LAST_CHECKPOINT}), '{LAST}' ({last}); 'pretrained' or no --ckpt: the model that "
                        "ships with musicrnn (trained on MAESTRO, CC BY-NC-SA 4.0)")


def add_prime_args(p: argparse.ArgumentParser) -> None:
    """--prime / --prime-split / --prime-at / --data-root: shared by sample and live."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prime", default=None, help="MIDI file whose notes start the generation")
    src.add_argument("--prime-split", default=None, choices=("train", "validation", "test"),
                     help="prime with a random window of a file of this dataset split (default: a file of any "
                          "split, drawn with --seed)")
    p.add_argument("--prime-at", default="end", choices=("start", "end"),
                   help="with --prime: use the file's first or last notes (default: end)")
    p.add_argument("--data-root", default=None, help="dataset folder for --prime-split (default: "
                                                     "$MUSICRNN_DATA, else the bundled sample)")


def add_sampling_args(p: argparse.ArgumentParser, timing: bool = False) -> None:
    """--temperature [/ --timing-temperature] / --top-k / --top-p / --seed / --composer / --device / --threads:
    sample and live (``timing``: offer --timing-temperature, for a command that passes it on)."""
    # defaults: the best measured settings of the pretrained model (README "The pretrained model")
    add_temperature_args(p, DEFAULT_TEMPERATURE, timing)
    p.add_argument("--top-k", type=int, default=None, help="keep only the k likeliest pitches (none: off)")
    p.add_argument("--top-p", type=float, default=DEFAULT_TOP_P, help="nucleus sampling: keep the smallest set of "
                                                              "pitches with this much probability (1 = off)")
    p.add_argument("--seed", type=int, default=None, help="one seed for the prime window and the sampling: same "
                                                          "seed, same notes (default: random, printed)")
    p.add_argument("--composer", default=None, help="composer name for composer-conditioned models "
                                                    "(default: the prime window's composer, else unknown)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    add_threads_arg(p)


def add_temperature_args(p: argparse.ArgumentParser, default: float | None, timing: bool = True) -> None:
    """--temperature (pitch, and timing unless --timing-temperature) [and --timing-temperature]."""
    unless = " unless --timing-temperature is given" if timing else ""
    p.add_argument("--temperature", type=float, default=default,
                   help=f"sampling temperature of pitch, and of step, duration and velocity{unless}; 0 = greedy")
    if timing:
        add_timing_temperature_arg(p, DEFAULT_TIMING_TEMPERATURE)


def add_timing_temperature_arg(p: argparse.ArgumentParser, default: float | None = None) -> None:
    p.add_argument("--timing-temperature", type=float, default=default,
                   help="temperature of step, duration and velocity"
                        + ("" if default else " (default: the pitch temperature)"))


def add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: a small batch is fastest on one thread, and a busy "
                        "machine makes more threads much slower)")


def set_threads(n: int) -> None:
    """``torch.set_num_threads(n)``; ConfigError for n < 1 or more threads than the machine has CPUs
    (more only oversubscribes the cores, and each thread reserves a stack)."""
    import os

    from musicrnn.errors import ConfigError

    cpus = os.cpu_count() or 1
    if not 1 <= n <= cpus:
        raise ConfigError(f"--threads must be in [1, {cpus}] (this machine's CPUs), got {n} — pass --threads 1")
    import torch

    torch.set_num_threads(n)


def open_checkpoint(ckpt_arg: str | None, device="cpu", info: list[str] | None = None):
    """--ckpt -> ``LoadedCheckpoint`` (``model.checkpoint.load_checkpoint``: 'pretrained' or none, 'last',
    a run folder or a path); every failure is one CheckpointError line. The one line saying which model
    runs is printed now, or appended to ``info`` for a command that prints once all its input is valid."""
    from musicrnn.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(ckpt_arg, map_location=device)
    if not loaded.pretrained and str(loaded.path) == str(ckpt_arg):
        return loaded  # the very file the user named: nothing to tell
    if info is None:
        print(loaded.using_line(), file=sys.stderr)
    else:
        info.append(loaded.using_line())
    return loaded


def load_checkpoint_net(ckpt_arg: str | None, device):
    """(path, network) of the checkpoint, saying only when the pretrained model runs (for ``live``, which
    prints its own "using checkpoint" line; new callers use ``open_checkpoint``)."""
    from musicrnn.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(ckpt_arg, map_location=device)
    if loaded.pretrained:
        print(loaded.using_line(), file=sys.stderr)
    return loaded.path, loaded.net


SEED_LIMIT = 2**64  # torch.Generator.manual_seed takes an unsigned 64-bit seed; numpy takes those too


def run_seed(a: argparse.Namespace, info: list[str]) -> int:
    """The one seed of a run: ``--seed``, else one drawn from the OS, stored in ``a.seed`` and said in
    ``info``, so the prime window and the sampling both use the seed that is printed."""
    import os

    from musicrnn.errors import ConfigError

    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "little")
        info.append(f"seed {a.seed} (pass --seed {a.seed} to repeat)")
    elif not 0 <= a.seed < SEED_LIMIT:
        raise ConfigError(f"--seed must be in [0, 2**64), got {a.seed} — pass e.g. --seed 0")
    return a.seed


def choose_prime(a: argparse.Namespace, net, info: list[str]):
    """The prime from --prime / --prime-split (see add_prime_args) -> (Notes, composer); says what it used
    in ``info``. Without --composer, a dataset window's composer is used when the network knows it.
    The window (a file of any split unless --prime-split) is drawn with ``run_seed(a)``."""
    from musicrnn.sampling.primes import pick_window, prime_from_midi

    run_seed(a, info)
    L = net.seq_length
    composer = a.composer
    if a.prime:
        prime = prime_from_midi(a.prime, L, at=a.prime_at)
        info.append(f"prime: {a.prime_at} {L} notes of {a.prime}")
    else:
        w = pick_window(a.data_root, a.prime_split, a.seed, L, progress=sys.stderr.isatty())
        prime = w.notes
        info.append(f"prime: notes {w.first_note}..{w.first_note + L - 1} of {w.file} ({w.composer})")
        if composer is None and w.composer in net.composers:
            composer = w.composer
    return prime, composer
