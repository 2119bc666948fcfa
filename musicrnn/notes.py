"""``Notes``: the project's one note representation, and its conversions to and from MIDI.

The MIDI bytes themselves belong to ``musicrnn.midi``: reading goes through its checked byte walker
(``midi.check``, then ``midi.fast`` or pretty_midi), writing through its one writer (``midi.write``).

Everything flows through this type: MIDI -> Notes -> feature windows -> model -> Notes -> MIDI/port.
A ``Notes`` is a struct of numpy arrays (not a list of objects) so a whole MAESTRO performance
(~5k notes) converts, slices and caches without Python loops.
"""
from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from musicrnn.errors import MidiError
from musicrnn.io_utils import atomic_write
from musicrnn.midi import write as midi_write
from musicrnn.midi.check import read_checked

NUM_PITCHES = 128
PIANO_LOW, PIANO_HIGH = 21, 108  # A0..C8, the 88 keys
SUSTAIN_CC = 64
DEFAULT_VELOCITY = 100  # every note's velocity when none is given or modelled (the one place it is set)
FEATURES = ("pitch", "step", "duration", "velocity")
TICKS_PER_SECOND = midi_write.TICKS_PER_SECOND  # what to_midi writes: 1920 ticks/s, one tick ~0.52 ms


@dataclass(frozen=True, eq=False)
class Notes:
    """A note sequence sorted by (start, pitch). Times in seconds.

    pitch:    int16 (n,)  MIDI pitch 0..127
    start:    float64 (n,) onset, seconds
    end:      float64 (n,) release, seconds (> start)
    velocity: int16 (n,)  1..127
    """

    pitch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    velocity: np.ndarray

    def __post_init__(self):
        n = len(self.pitch)
        if not (len(self.start) == len(self.end) == len(self.velocity) == n):
            raise ValueError("Notes arrays must all have the same length")

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> Notes:
        return cls(np.zeros(0, np.int16), np.zeros(0), np.zeros(0), np.zeros(0, np.int16))

    @classmethod
    def from_arrays(cls, pitch, start, end, velocity=None) -> Notes:
        """Build from any array-likes, sort by (start, pitch) and drop notes that do not sound.

        Notes with end <= start or non-finite times are dropped: a zero-length note has no
        duration to learn and a negative one is damage, not music. Integer and float64 inputs are
        not copied before the sort (sampling hands over 10^7-note buffers).
        """
        pitch = np.asarray(pitch)
        if pitch.dtype.kind not in "iu":
            pitch = pitch.astype(np.int64)
        start = np.asarray(start, dtype=np.float64)
        end = np.asarray(end, dtype=np.float64)
        velocity = np.full(len(pitch), DEFAULT_VELOCITY) if velocity is None else np.asarray(velocity)
        ok = np.isfinite(start) & np.isfinite(end) & (end > start) & (pitch >= 0) & (pitch < 128)
        if not ok.all():
            pitch, start, end, velocity = pitch[ok], start[ok], end[ok], velocity[ok]
        del ok
        order = np.lexsort((pitch, start))  # stable: equal (start, pitch) keep their order
        return cls(
            pitch[order].astype(np.int16),
            start[order],
            end[order],
            np.clip(velocity[order], 1, 127).astype(np.int16),
        )

    @classmethod
    def from_pretty_midi(cls, pm, sustain: bool = False) -> Notes:
        """Merge all non-drum instruments; with ``sustain`` the CC64 pedal extends note ends."""
        parts = []
        for inst in pm.instruments:
            if inst.is_drum or not inst.notes:
                continue
            arr = np.array([(n.pitch, n.start, n.end, n.velocity) for n in inst.notes], np.float64)
            if sustain:
                arr[:, 2] = _apply_sustain(arr[:, 0], arr[:, 1], arr[:, 2], inst.control_changes)
            parts.append(arr)
        return cls._from_parts(parts)

    @classmethod
    def _from_parts(cls, parts: list) -> Notes:
        """Concatenate per-instrument (pitch, start, end, velocity) arrays, in instrument order."""
        if not parts:
            return cls.empty()
        a = np.concatenate(parts)
        return cls.from_arrays(a[:, 0], a[:, 1], a[:, 2], a[:, 3])

    @classmethod
    def from_midi(cls, path: str | Path, sustain: bool = False, fast: bool = True) -> Notes:
        """Read a MIDI file. Damaged or unreadable files raise ``MidiError`` (one clear line).

        ``fast`` reads the notes with ``midi.fast`` (bit-identical to pretty_midi's, ~20x faster); files
        it is unsure of, and every file with ``fast=False``, are parsed by pretty_midi.
        """
        return cls._read_midi(path, sustain, fast)[0]

    @classmethod
    def _read_midi(cls, path, sustain: bool, fast: bool) -> tuple[Notes, str | None]:
        """``from_midi``, and why pretty_midi parsed the file (None: the fast reader did)."""
        data = read_checked(path)
        why = "fast reader off"
        if fast:
            from musicrnn.midi import fast as fastmidi

            insts = fastmidi.instruments(data)
            if not isinstance(insts, str):
                parts = []
                for pitch, start, end, vel, cc_time, cc_value in insts:
                    if sustain:
                        end = _sustain_ends(pitch, start, end, cc_time, cc_value)
                    parts.append(np.stack([pitch, start, end, vel], axis=1).astype(np.float64))
                return cls._checked(cls._from_parts(parts), path), None
            why = insts
        import pretty_midi  # heavy import, only where MIDI is parsed

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pretty_midi warns on odd-but-valid files
                pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
        except Exception as e:  # pretty_midi/mido raise many types on bad input
            raise MidiError(f"{path}: cannot be parsed as MIDI ({type(e).__name__}: {e})") from None
        return cls._checked(cls.from_pretty_midi(pm, sustain=sustain), path), why

    @staticmethod
    def _checked(notes: Notes, path) -> Notes:
        if len(notes) and not math.isfinite(float(notes.end.max())):
            raise MidiError(f"{path}: note times are not finite (absurd tempo?)")
        return notes

    @classmethod
    def from_features(cls, features: np.ndarray, start: float = 0.0, velocity: int = DEFAULT_VELOCITY) -> Notes:
        """Inverse of ``features``: (n, 3|4) pitch, step, duration[, velocity] -> Notes.

        The first note starts at ``start + step[0]``.
        """
        f = np.asarray(features, dtype=np.float64)
        starts = start + np.cumsum(f[:, 1])
        vel = f[:, 3] if f.shape[1] > 3 else np.full(len(f), velocity)
        return cls.from_arrays(np.rint(f[:, 0]), starts, starts + f[:, 2], np.rint(vel))

    # ---- conversion ---------------------------------------------------------------------------
    def features(self, velocity: bool = False) -> np.ndarray:
        """(n, 3|4) float32: pitch, step (start - previous start; 0 for the first), duration[, velocity]."""
        step = np.diff(self.start, prepend=self.start[:1]) if len(self) else np.zeros(0)
        cols = [self.pitch, step, self.end - self.start]
        if velocity:
            cols.append(self.velocity)
        return np.stack(cols, axis=1).astype(np.float32) if len(self) else np.zeros((0, len(cols)), np.float32)

    def write_midi(self, f: BinaryIO, program: int = 0) -> None:
        """Write a standard MIDI file to the open binary file ``f`` (``midi.write``: 960 ticks per
        beat at 120 bpm, times snapped to ticks, every note at least one tick long)."""
        midi_write.write_midi(f, self.pitch, self.start, self.end, self.velocity, program)

    def to_midi(self, path: str | Path, program: int = 0) -> Path:
        """Write a standard MIDI file (atomically: a crash leaves no partial file)."""
        with atomic_write(path) as f:
            self.write_midi(f, program)
        return Path(path)

    # ---- transforms ---------------------------------------------------------------------------
    def transpose(self, semitones: int) -> Notes:
        """Shift every pitch; notes pushed outside 0..127 are dropped."""
        return Notes.from_arrays(self.pitch.astype(np.int64) + semitones, self.start, self.end, self.velocity)

    def shifted(self, seconds: float) -> Notes:
        return Notes(self.pitch, self.start + seconds, self.end + seconds, self.velocity)

    @property
    def duration(self) -> float:
        return float(self.end.max()) if len(self) else 0.0

    def __len__(self) -> int:
        return len(self.pitch)

    def __getitem__(self, idx) -> Notes:
        if not isinstance(idx, slice):
            idx = np.atleast_1d(idx)
        return Notes(self.pitch[idx], self.start[idx], self.end[idx], self.velocity[idx])

    def __repr__(self) -> str:
        return f"Notes(n={len(self)}, duration={self.duration:.1f}s)"


def _apply_sustain(pitch, start, end, control_changes) -> np.ndarray:
    """Extend note ends held by the sustain pedal (CC64 >= 64) to the pedal release.

    A note released while the pedal is down keeps sounding until the pedal goes up, or until the
    same pitch is struck again (a piano damper cannot hold two strikes of one key).
    """
    ccs = [(c.time, c.value) for c in control_changes if c.number == SUSTAIN_CC]
    return _sustain_ends(pitch, start, end, np.array([t for t, _ in ccs]), np.array([v for _, v in ccs]))


def _sustain_ends(pitch, start, end, cc_time, cc_value) -> np.ndarray:
    """``_apply_sustain`` on arrays: the CC64 events' times and values."""
    if not len(cc_time):
        return end
    down = np.asarray(cc_value) >= 64
    order = np.lexsort((down, cc_time))  # by (time, down), as sorted((time, down)) did
    t, d = np.asarray(cc_time, np.float64)[order], down[order]
    was = np.append(False, d[:-1])  # pedal state before each event (it is up at the start)
    downs, ups = t[d & ~was], t[~d & was]  # pedal intervals [down, up)
    if not len(downs):
        return end
    if len(ups) < len(downs):
        ups = np.append(ups, math.inf)
    new_end = end.copy()
    k = np.searchsorted(downs, end, side="right") - 1  # last pedal-down at or before release
    held = (k >= 0) & (end < ups[np.maximum(k, 0)])
    new_end[held] = ups[k[held]]
    # cut at the next strike of the same pitch
    order = np.lexsort((start, pitch))
    p, s = pitch[order], start[order]
    nxt = np.full(len(p), math.inf)
    same = p[1:] == p[:-1]
    nxt[:-1][same] = s[1:][same]
    next_strike = np.empty_like(nxt)
    next_strike[order] = nxt
    new_end = np.minimum(new_end, np.maximum(next_strike, end))
    # a pedal held to the file's end: stop at the last event we know of
    last = max(float(end.max()), float(t.max()))
    return np.minimum(new_end, np.maximum(last, end))
