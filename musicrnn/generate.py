"""The one sampling loop, shared by ``sample`` (files), ``live`` (a MIDI port) and ``evaluate``.

Model API used (and nothing else): ``model(x_raw (B,T,4), composer (B,) long, state) -> ({head:
(B,T,...)}, state)``, ``model.sample_next({head: (B,...)}, temperature, top_k, top_p, generator) ->
(B,4)`` raw pitch/step/duration/velocity, ``model.steppable``, ``model.hparams.seq_length`` and
``model.hparams.composers``.

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
- Per-note cost (issue #4): at batch 1 the fixed cost of each torch call dominates, so the step path
  uses the model's optional ``stepper()`` (LSTM cells via ``torch.lstm_cell``, weights looked up
  once) and ``sample_next_rows``, and small CPU batches do the clamp/round/clock bookkeeping in Python
  floats (bitwise the torch version's). Window mode shares the sampling and bookkeeping code.
- Repeatability: one ``torch.Generator`` on the model's device drives every random draw, so the same
  seed (and device) gives identical notes; ``seed=None`` draws a seed and records it in ``.seed``.
"""
from __future__ import annotations

import os
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .errors import ConfigError, MidiError, MusicRNNError
from .notes import Notes

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


def resolve_composer(model, composer: str | int | None) -> int:
    """Composer name (exact, else a unique case-insensitive substring) or id -> the model's id; None -> 0."""
    names = list(getattr(model.hparams, "composers", None) or [])
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
    mode: "auto" (step if ``model.steppable`` else window), "step", or "window" (re-run the last
    ``context`` notes, default ``seq_length``, every step).
    """

    HOST_MAX_BATCH = 8  # up to this many samples on CPU, per-note bookkeeping runs in Python floats

    def __init__(self, model, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 seed: int | None = None, device: str | torch.device = "cpu", composer: str | int | None = None,
                 mode: str = "auto", context: int | None = None):
        _validate(temperature, top_k, top_p)
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "step" and not model.steppable:
            raise ConfigError(f"{type(model).__name__} is not steppable — use mode 'window' or 'auto'")
        self.device = resolve_device(device)
        if any(t.device != self.device for t in (*model.parameters(), *model.buffers())):
            model = model.to(self.device)  # (not always: Module.to walks every submodule, ~1 ms per call)
        self.model = model.eval()
        self._sample_rows = getattr(model, "sample_next_rows", None)  # optional: sample_next as floats
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.mode = ("step" if model.steppable else "window") if mode == "auto" else mode
        self.seq_length = int(model.hparams.seq_length)
        self.context = int(context) if context else self.seq_length
        self.composer_id = resolve_composer(model, composer)
        self.generator = torch.Generator(device=self.device)
        # no seed: draw one from the OS (not torch.seed(), which would reseed the global generator)
        self.seed = int(seed) if seed is not None else int.from_bytes(os.urandom(4), "little")
        self.generator.manual_seed(self.seed)
        self._out = None  # head outputs at the last position {head: (B, ...)}
        self._state, self._stepper, self._cells = None, None, None
        # per-column bounds of pitch, step, duration, velocity, and which columns are integers
        self._lo = torch.tensor([0.0, 0.0, MIN_DURATION, 1.0], dtype=torch.float64, device=self.device)
        self._hi = torch.tensor([127.0, MAX_SECONDS, MAX_SECONDS, 127.0], dtype=torch.float64, device=self.device)
        self._int_cols = torch.tensor([True, False, False, True], device=self.device)

    # ---- state -------------------------------------------------------------------------------------
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
        self.clock = torch.zeros(num_samples, dtype=torch.float64, device=self.device)  # last onset, s (_finish)
        # small CPU batches keep the clock and do the per-note arithmetic in Python floats (_finish_host)
        self._host = self.device.type == "cpu" and num_samples <= self.HOST_MAX_BATCH
        self._clock_host = [0.0] * num_samples  # last onset per sample, s
        self.window = x[:, -self.context:]  # (B, <=context, 4): only used in window mode
        self.state = None  # (also drops the stepper of an earlier start)
        self._run(x if self.mode == "step" else self.window)
        # a fast one-note step (MusicModel.stepper), built once per run; None -> forward on (B, 1, 4)
        make = getattr(self.model, "stepper", None) if self.mode == "step" else None
        self._stepper = make() if make is not None else None
        if self._stepper is not None:
            self._cells = self._stepper.cells(self._state)  # the carried state, in the stepper's format

    @property
    def state(self):
        """The core's carried state in its own format (step mode; None in window mode)."""
        return self._stepper.state(self._cells) if self._stepper is not None else self._state

    @state.setter
    def state(self, value) -> None:
        self._state, self._stepper = value, None

    @torch.inference_mode()
    def _run(self, x: torch.Tensor) -> None:
        """Feed x (B, T, 4); keep the head outputs at the last position (and the state when stepping)."""
        state = self.state if self.mode == "step" else None
        out, state = self.model(x, self.composer, state)  # {head: (B, T, ...)}
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
        args = (self._out, self.temperature, self.top_k, self.top_p, self.generator)
        if self._host:
            rows = self._sample_rows(*args) if self._sample_rows else self.model.sample_next(*args).tolist()
            values, row = self._finish_host(rows)
        else:
            raw = self.model.sample_next(*args)  # (B, 4) pitch, step, duration, velocity
            if raw.shape[1] == 3:  # a model without velocity: the data's default
                raw = torch.cat([raw, torch.full_like(raw[:, :1], 100.0)], dim=1)
            values, row = self._finish(raw)
        if self._stepper is not None:  # (B, 4): O(1) per note, few torch calls
            self._out, self._cells = self._stepper(row, self.composer, self._cells)
        elif self.mode == "step":
            self._run(row.unsqueeze(1))  # (B, 1, 4)
        else:
            self.window = torch.cat([self.window, row.unsqueeze(1)], dim=1)[:, -self.context:]
            self._run(self.window)  # (B, <=context, 4)
        return Step(values, row)

    def _finish(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """raw (B, 4) -> (values (B, 4) float64 pitch/start/end/velocity, row fed back (B, 4) float32)."""
        r = torch.nan_to_num(raw.double(), nan=0.0).clamp(self._lo, self._hi)  # (B, 4)
        r = torch.where(self._int_cols, r.round(), r)  # integer pitch and velocity
        start = self.clock + r[:, 1]  # float64 absolute times, exactly as Notes stores them
        end = start + r[:, 2]
        row = torch.stack([r[:, 0], start - self.clock, end - start, r[:, 3]], dim=-1).float()  # (B, 4)
        self.clock = start
        return torch.stack([r[:, 0], start, end, r[:, 3]], dim=-1), row

    def _finish_host(self, raw: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``_finish`` in Python floats, for small CPU batches (why: ~20 torch calls of ~1-2 us each per
        note cost more than the sampling; Python floats are IEEE doubles, so the values are the same
        bits: the same clamp, round-half-even, float64 sums and float32 rounding)."""
        values, rows, clock = array("d"), array("d"), self._clock_host
        for b, x in enumerate(raw):  # B rows of 3 or 4 floats
            p, s, d = x[0], x[1], x[2]
            v = x[3] if len(x) > 3 else 100.0  # a model without velocity: the data's default
            # NaN -> 0, then clamp to [lo, hi]; round() of a float rounds half to even, as torch.round
            p = float(round(min(max(0.0 if p != p else p, 0.0), 127.0)))
            s = min(max(0.0 if s != s else s, 0.0), MAX_SECONDS)
            d = min(max(0.0 if d != d else d, MIN_DURATION), MAX_SECONDS)
            v = float(round(min(max(0.0 if v != v else v, 1.0), 127.0)))
            start = clock[b] + s
            end = start + d
            values.extend((p, start, end, v))
            rows.extend((p, start - clock[b], end - start, v))
            clock[b] = start
        # array("f") rounds each double to the nearest float32, as Tensor.float() does
        return (torch.frombuffer(values, dtype=torch.float64).view(-1, 4),  # (B, 4)
                torch.frombuffer(array("f", rows), dtype=torch.float32).view(-1, 4))  # (B, 4)


def _to_notes(steps: list[Step]) -> list[Notes]:
    """Stack steps (on device) -> one Notes per sample (CPU numpy), one transfer at the end."""
    if not steps:
        return []
    v = torch.stack([s.values for s in steps], dim=1).cpu().numpy()  # (B, N, 4)
    return [Notes.from_arrays(x[:, 0], x[:, 1], x[:, 2], x[:, 3]) for x in v]


def generate(model, prime: Notes, num_notes: int, *, num_samples: int = 1, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
             composer: str | int | None = None, device: str | torch.device = "cpu", mode: str = "auto",
             context: int | None = None, progress: bool = False) -> list[Notes]:
    """Generate ``num_notes`` notes for each of ``num_samples`` samples, sampled as ONE batch.

    Returns only the continuation; times count from the prime's last onset (see ``place_after``).
    """
    if num_notes < 1:
        raise ConfigError(f"num_notes must be >= 1, got {num_notes}")
    gen = Generator(model, temperature, top_k, top_p, seed, device, composer, mode, context)
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
    with torch.inference_mode():  # once for the whole loop, not once per note
        return _collect(gen, it, num_notes)


def _collect(gen: Generator, it, num_notes: int) -> list[Notes]:
    """Run ``gen.step()`` over ``it``, keeping only the notes (issue 11: ~18 bytes per note, not a
    ``Step`` of two tensors per note): a ``NoteBuffer`` on CPU; on a GPU one preallocated device
    tensor (one transfer at the end, no sync per note)."""
    if gen.device.type != "cpu":
        out = torch.empty((num_notes, gen.batch, 4), dtype=torch.float64, device=gen.device)  # (N, B, 4)
        for i in it:
            out[i] = gen.step().values
        return _to_notes_array(out.transpose(0, 1).cpu().numpy())
    from .notebuffer import NoteBuffer

    buf = NoteBuffer(gen.batch, capacity=num_notes)
    for _ in it:
        buf.append(gen.step().values.numpy())  # (B, 4)
    return buf.all_notes()


def _to_notes_array(v: np.ndarray) -> list[Notes]:
    """(B, N, 4) pitch/start/end/velocity -> one Notes per sample."""
    return [Notes.from_arrays(x[:, 0], x[:, 1], x[:, 2], x[:, 3]) for x in v]


def stream(model, prime: Notes, *, num_notes: int | None = None, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
           composer: str | int | None = None, device: str | torch.device = "cpu",
           mode: str = "auto") -> Iterator[tuple[int, float, float, int]]:
    """Yield (pitch, start, end, velocity) one note at a time, forever or up to ``num_notes``.

    Times are seconds from the prime's last onset, monotonically non-decreasing in ``start``. Lazy:
    each ``next()`` samples one note, so a live player can schedule as it goes. For live control of
    temperature etc., build a ``Generator`` yourself and iterate ``generator_notes(gen)``.
    """
    gen = Generator(model, temperature, top_k, top_p, seed, device, composer, mode)
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


# ---- prime sources ---------------------------------------------------------------------------------
def _from_zero(notes: Notes) -> Notes:
    return notes.shifted(-float(notes.start[0])) if len(notes) else notes


def prime_from_midi(path: str | Path, seq_length: int, *, at: str = "end", sustain: bool = False) -> Notes:
    """``seq_length`` notes of any MIDI file (all non-drum tracks merged), shifted to start at 0.

    at: "end" (the last notes: the model continues the piece) or "start" (its opening).
    Raises MidiError if the file has fewer than ``seq_length`` notes (no padding, see module doc).
    """
    if at not in ("start", "end"):
        raise ConfigError(f"prime position must be 'start' or 'end', got {at!r}")
    notes = Notes.from_midi(path, sustain=sustain)
    if len(notes) < seq_length:
        raise MidiError(f"{path}: has {len(notes)} notes (drums excluded) but the model needs a prime of "
                        f"{seq_length} — use a longer MIDI file or --prime-split validation")
    return _from_zero(notes[-seq_length:] if at == "end" else notes[:seq_length])


@dataclass
class PrimeWindow:
    """A prime drawn from a dataset, and where it came from (for messages and composer defaults)."""

    notes: Notes
    file: str
    composer: str
    first_note: int


def pick_window(root: str | Path | None = None, split: str = "validation", seed: int | None = 0,
                seq_length: int = 25, *, sustain: bool = False, cache_dir: str | Path | None = None,
                progress: bool = False) -> PrimeWindow:
    """A random ``seq_length``-note window of one file of ``split`` (via the note cache), seeded.

    The first call on a dataset parses it into the note cache (minutes for full MAESTRO; ``progress``).
    """
    from .notecache import SPLITS, build_or_load

    if split not in SPLITS:
        raise ConfigError(f"--prime-split must be one of {SPLITS}, got {split!r}")
    cache = build_or_load(root, sustain=sustain, progress=progress, cache_folder=cache_dir)
    counts = np.diff(cache.offsets)
    ok = [k for k, f in enumerate(cache.files) if f.split == split and counts[k] >= seq_length]
    if not ok:
        raise ConfigError(f"{cache.root}: no {split} file has {seq_length} notes — use another --prime-split "
                          f"or --data-root")
    rng = np.random.default_rng(seed)
    k = ok[int(rng.integers(len(ok)))]
    first = int(rng.integers(counts[k] - seq_length + 1))
    notes = cache.notes(k)[first:first + seq_length]
    return PrimeWindow(_from_zero(notes), cache.files[k].path, cache.files[k].composer, first)


def prime_from_dataset(root: str | Path | None = None, split: str = "validation", seed: int | None = 0,
                       seq_length: int = 25, **kw) -> Notes:
    """Notes of ``pick_window`` (root None -> $MUSICRNN_DATA or the bundled sample)."""
    return pick_window(root, split, seed, seq_length, **kw).notes


def prime_bundled(seed: int | None = 0, seq_length: int = 25, **kw) -> Notes:
    """A random validation window of the bundled 10-file MAESTRO sample (works on a fresh clone)."""
    from .notecache import SAMPLE_ROOT

    return prime_from_dataset(SAMPLE_ROOT, "validation", seed, seq_length, **kw)


__all__ = ["Generator", "Step", "generate", "generate_with", "stream", "generator_notes", "place_after", "prime_from_midi",
           "prime_from_dataset", "prime_bundled", "pick_window", "PrimeWindow", "resolve_device",
           "resolve_composer", "MIN_DURATION", "MAX_SECONDS", "MusicRNNError"]
