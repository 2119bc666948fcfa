"""The one sampling loop, shared by ``sample`` (files), ``live`` (a MIDI port) and ``evaluate``.

Network API used (``model.network.MusicNet``, and nothing else): ``net(x_raw (B,T,4), composer (B,)
long, state) -> ({head: (B,T,...)}, state)``, ``net.step(x_raw (B,4), composer, state) -> ({head:
(B,...)}, state)`` (the one per-note path), ``net.sample({head: (B,...)}, temperature, top_k, top_p,
generator) -> (B,4)`` raw pitch/step/duration/velocity, ``net.steppable``, ``net.seq_length`` and
``net.composers``.

Design decisions (why):
- Fed-back notes are *raw features exactly as the data pipeline makes them* (the model scales its own
  input). Each sampled note is turned into absolute float64 times on a running clock, and the row fed
  back is computed from those times the way ``Notes.features`` does (``float32(start - prev_start)``,
  ``float32(end - start)``), so the model sees what it would see if the output file were read back.
  Pitch and velocity are rounded to integers; a sampled duration is floored at ``MIN_DURATION`` (a
  clipped-to-zero note would not sound and ``Notes`` drops it); step and duration are capped at
  ``MAX_SECONDS`` so a runaway regression cannot produce an hour of silence.
- Steppable (recurrent) models run the prime once and then feed ONE note per step with carried state
  (O(1) per note; the context then grows past ``seq_length``, the usual RNN trade-off). Other models
  (``steppable=False``) re-run the last ``context`` notes (default ``seq_length``) each step, which is
  also available for recurrent models with ``mode="window"`` (exactly the training condition).
- Only the last ``seq_length`` notes of a prime are used (training windows start from zero state).
  A shorter prime (>= 1 note) is allowed and simply gives less context; ``prime_from_midi`` refuses
  files with fewer than ``seq_length`` notes instead of padding, because any pad (pitch 0, step 0)
  is a note the model never saw.
- Times of generated notes are measured from the prime's last onset (t = 0): the first generated
  note starts at its sampled step. ``place_after(prime, cont)`` puts both on one timeline.
- Per-note cost: at batch 1 the fixed cost of each torch call dominates, so the step path is the
  network's ``step`` (LSTM cells via ``torch.lstm_cell``, weights looked up once) and the per-note
  bookkeeping is a handful of tensor ops. Window mode shares the sampling and bookkeeping code.
- Repeatability: one ``torch.Generator`` on the model's device drives every random draw, so the same
  seed (and device) gives identical notes; ``seed=None`` draws a seed and records it in ``.seed``.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from musicrnn.errors import ConfigError, MidiError
from musicrnn.notes import Notes
from musicrnn.sampling.budget import check_memory

MIN_DURATION = 0.01  # seconds: shortest note written (a 0 s note does not sound and is dropped)
MAX_SECONDS = 30.0  # cap for one step or duration
MODES = ("auto", "step", "window")


# ---- small resolvers ---------------------------------------------------------------------------------
def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """"cpu" | "cuda" | "cuda:N" | "auto" (cuda when available) -> torch.device; ConfigError if absent."""
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available on this machine (torch "
                              f"{torch.__version__}) — use --device cpu or auto")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"--device {device!r}: must be cpu, cuda or auto")


def resolve_composer(net, composer: str | int | None) -> int:
    """Composer name (exact, else a unique case-insensitive substring) or id -> the model's id; None -> 0."""
    names = net.composers
    if composer is None:
        return 0
    if isinstance(composer, (int, np.integer)):
        if names and not 0 <= int(composer) < len(names):
            raise ConfigError(f"composer id {composer} out of range: this model knows {len(names)} composers")
        return int(composer)
    if composer in names:
        return names.index(composer)
    hits = [i for i, n in enumerate(names) if str(composer).lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    if not names:
        raise ConfigError(f"--composer {composer!r}: this checkpoint has no composer list — drop --composer")
    shown = ", ".join(names[i] for i in hits[:8]) if hits else ", ".join(names[:8])
    what = "matches several" if hits else "is not one of the model's composers"
    raise ConfigError(f"--composer {composer!r} {what} ({shown}{', ...' if len(names) > 8 else ''}) — "
                      f"use an exact name")


def _validate(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not (temperature >= 0 and np.isfinite(temperature)):
        raise ConfigError(f"--temperature must be a finite number >= 0 (0 = greedy), got {temperature} "
                          f"— pass e.g. --temperature 1.0")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")


# ---- one generated note per sample -----------------------------------------------------------------
@dataclass
class Step:
    """One generated note for each of the B samples (tensors on the generator's device).

    values (B, 4) float64: pitch, start, end, velocity (times in seconds from the prime's last onset);
    features (B, 4) float32: the raw row fed back to the model (== ``Notes.features(velocity=True)``).
    """

    values: torch.Tensor
    features: torch.Tensor

    @property
    def pitch(self) -> torch.Tensor:  # (B,) long
        return self.values[:, 0].long()

    @property
    def start(self) -> torch.Tensor:  # (B,) float64
        return self.values[:, 1]

    @property
    def end(self) -> torch.Tensor:  # (B,) float64
        return self.values[:, 2]

    @property
    def velocity(self) -> torch.Tensor:  # (B,) long
        return self.values[:, 3].long()


class Generator:
    """Stateful autoregressive sampler: ``start(prime, num_samples)`` then ``step()`` repeatedly.

    ``temperature``, ``top_k`` and ``top_p`` may be changed between steps (live control).
    ``temperature`` scales pitch, and step, duration and velocity too unless ``timing_temperature``
    is given (then that one scales those three).
    mode: "auto" (step if ``net.steppable`` else window), "step", or "window" (re-run the last
    ``context`` notes, default ``seq_length``, every step).
    """

    def __init__(self, net, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 seed: int | None = None, device: str | torch.device = "cpu", composer: str | int | None = None,
                 mode: str = "auto", context: int | None = None, timing_temperature: float | None = None):
        _validate(temperature, top_k, top_p)
        if timing_temperature is not None and not (timing_temperature >= 0 and np.isfinite(timing_temperature)):
            raise ConfigError(f"--timing-temperature must be a finite number >= 0, got {timing_temperature}")
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "step" and not net.steppable:
            raise ConfigError(f"{type(net.core).__name__} is not steppable — use mode 'window' or 'auto'")
        self.device = resolve_device(device)
        if any(t.device != self.device for t in (*net.parameters(), *net.buffers())):
            net = net.to(self.device)  # (not always: Module.to walks every submodule, ~1 ms per call)
        self.net = net.eval()
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.timing_temperature = timing_temperature
        self.mode = ("step" if net.steppable else "window") if mode == "auto" else mode
        self.seq_length = int(net.seq_length)
        self.context = int(context) if context else self.seq_length
        self.composer_id = resolve_composer(net, composer)
        self.generator = torch.Generator(device=self.device)
        # no seed: draw one from the OS (not torch.seed(), which would reseed the global generator)
        self.seed = int(seed) if seed is not None else int.from_bytes(os.urandom(4), "little")
        self.generator.manual_seed(self.seed)
        self._out = None  # head outputs at the last position {head: (B, ...)}
        self.state = None  # the core's carried state (step mode)
        # per-column bounds of pitch, step, duration, velocity, and which columns are integers
        self._lo = torch.tensor([0.0, 0.0, MIN_DURATION, 1.0], dtype=torch.float64, device=self.device)
        self._hi = torch.tensor([127.0, MAX_SECONDS, MAX_SECONDS, 127.0], dtype=torch.float64, device=self.device)
        self._int_cols = torch.tensor([True, False, False, True], device=self.device)

    @property
    def model(self):
        """The network being sampled (``MusicNet``)."""
        return self.net

    def start(self, prime: Notes, num_samples: int = 1) -> None:
        """Run the prime (its last ``seq_length`` notes) for ``num_samples`` parallel samples."""
        if len(prime) < 1:
            raise MidiError("the prime has no notes — pass a MIDI file with notes (or use --prime-split)")
        if num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
        feats = torch.from_numpy(prime.features(velocity=True)[-self.seq_length:]).to(self.device)  # (L, 4)
        x = feats.unsqueeze(0).expand(num_samples, -1, -1).contiguous()  # (B, L, 4)
        self.batch = num_samples
        self.composer = torch.full((num_samples,), self.composer_id, dtype=torch.long, device=self.device)
        self.clock = torch.zeros(num_samples, dtype=torch.float64, device=self.device)  # last onset, s
        self.window = x[:, -self.context:]  # (B, <=context, 4): only used in window mode
        self.state = None
        self._run(x if self.mode == "step" else self.window)

    @torch.inference_mode()
    def _run(self, x: torch.Tensor) -> None:
        """Feed a window x (B, T, 4); keep the head outputs at the last position (and the state when stepping)."""
        out, state = self.net(x, self.composer, self.state if self.mode == "step" else None)  # {head: (B, T, ...)}
        self.state = state if self.mode == "step" else None
        self._out = {k: v[:, -1] for k, v in out.items()}  # {head: (B, ...)}

    def step(self) -> Step:
        """Sample the next note of every sample, feed it back, and return it."""
        if torch.is_inference_mode_enabled():  # generate_with enters it once: skip a context per note
            return self._step()
        with torch.inference_mode():
            return self._step()

    def _step(self) -> Step:
        if self._out is None:
            raise RuntimeError("call start(prime) before step()")
        raw = self.net.sample(self._out, self.temperature, self.top_k, self.top_p, self.generator,
                              self.timing_temperature)  # (B, 4)
        values, row = self._finish(raw)
        if self.mode == "step":  # the one per-note path: O(1) per note with carried state
            self._out, self.state = self.net.step(row, self.composer, self.state)
        else:  # window cores (or mode "window"): re-run the last ``context`` notes
            self.window = torch.cat([self.window, row.unsqueeze(1)], dim=1)[:, -self.context:]
            self._run(self.window)  # (B, <=context, 4)
        return Step(values, row)

    def _finish(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """raw (B, 4) -> (values (B, 4) float64 pitch/start/end/velocity, row fed back (B, 4) float32)."""
        r = torch.nan_to_num(raw.double(), nan=0.0).clamp_(self._lo, self._hi)  # (B, 4)
        r = torch.where(self._int_cols, r.round(), r)  # integer pitch and velocity
        pitch, step, duration, velocity = r.unbind(1)
        start = self.clock + step  # float64 absolute times, exactly as Notes stores them
        end = start + duration
        values = torch.stack([pitch, start, end, velocity], 1)
        # fed back: what Notes.features computes from the stored times
        row = torch.stack([pitch, start - self.clock, end - start, velocity], 1)
        self.clock = start
        return values, row.float()


def generate(net, prime: Notes, num_notes: int, *, num_samples: int = 1, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
             composer: str | int | None = None, device: str | torch.device = "cpu", mode: str = "auto",
             context: int | None = None, progress: bool = False,
             timing_temperature: float | None = None) -> list[Notes]:
    """Generate ``num_notes`` notes for each of ``num_samples`` samples, sampled as ONE batch.

    Returns only the continuation; times count from the prime's last onset (see ``place_after``).
    """
    if num_notes < 1:
        raise ConfigError(f"num_notes must be >= 1, got {num_notes}")
    check_memory(net, num_samples, num_notes)
    gen = Generator(net, temperature, top_k, top_p, seed, device, composer, mode, context, timing_temperature)
    gen.start(prime, num_samples)
    return generate_with(gen, num_notes, progress=progress)


def generate_with(gen: Generator, num_notes: int, progress: bool = False) -> list[Notes]:
    """``num_notes`` more notes from a started ``Generator`` -> one Notes per sample.

    progress: a tqdm bar on stderr (shown only when stderr is a terminal).
    """
    it = range(num_notes)
    if progress:
        import sys

        from tqdm import tqdm

        it = tqdm(it, desc="sampling", unit="note", file=sys.stderr, disable=None, dynamic_ncols=True,
                  leave=False)
    from musicrnn.sampling.notebuffer import collect_notes

    with torch.inference_mode():  # once for the whole loop, not once per note
        return collect_notes(gen, it, num_notes)


def stream(net, prime: Notes, *, num_notes: int | None = None, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
           composer: str | int | None = None, device: str | torch.device = "cpu",
           mode: str = "auto", timing_temperature: float | None = None) -> Iterator[tuple[int, float, float, int]]:
    """Yield (pitch, start, end, velocity) one note at a time, forever or up to ``num_notes``.

    Times are seconds from the prime's last onset, monotonically non-decreasing in ``start``. Lazy:
    each ``next()`` samples one note, so a live player can schedule as it goes. For live control of
    temperature etc., build a ``Generator`` yourself and iterate ``generator_notes(gen)``.
    """
    gen = Generator(net, temperature, top_k, top_p, seed, device, composer, mode, timing_temperature=timing_temperature)
    gen.start(prime, 1)
    yield from generator_notes(gen, num_notes)


def generator_notes(gen: Generator, num_notes: int | None = None) -> Iterator[tuple[int, float, float, int]]:
    """Notes of sample 0 of a started ``Generator`` as Python tuples (pitch, start, end, velocity)."""
    n = 0
    while num_notes is None or n < num_notes:
        s = gen.step()
        yield int(s.pitch[0]), float(s.start[0]), float(s.end[0]), int(s.velocity[0])
        n += 1


def place_after(prime: Notes, continuation: Notes) -> Notes:
    """Prime followed by its continuation on one timeline (continuation shifted to the last onset)."""
    if not len(prime):
        return continuation
    cont = continuation.shifted(float(prime.start[-1]))
    return Notes.from_arrays(np.concatenate([prime.pitch, cont.pitch]), np.concatenate([prime.start, cont.start]),
                             np.concatenate([prime.end, cont.end]), np.concatenate([prime.velocity, cont.velocity]))
