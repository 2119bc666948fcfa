"""NoteBuffer: generated notes accumulated in compact numpy arrays, ~18 bytes per note per sample.

Why: keeping one ``Step`` (two small tensors) per generated note cost ~1.8 KB per
note, so a 10^7-note run reached 5 GB. A note is four numbers; this buffer stores exactly those:
pitch uint8, start float64, end float64, velocity uint8 (times absolute, in seconds, as ``Notes``
stores them), for B samples side by side. Capacity is preallocated when the length is known
(``sample``: ``--num-notes``) and grows by doubling otherwise, so appending is O(1) amortised and
never creates a Python object per note.

``notes(b)`` returns sample b through ``Notes.from_arrays`` (which copies nothing before its sort).
"""
from __future__ import annotations

import numpy as np

from musicrnn.notes import Notes

BYTES_PER_NOTE = 1 + 8 + 8 + 1  # pitch, start, end, velocity


class NoteBuffer:
    """Append (B, 4) rows of pitch/start/end/velocity; read back one ``Notes`` per sample."""

    def __init__(self, batch: int, capacity: int = 1024):
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.batch, self.size = int(batch), 0
        cap = max(int(capacity), 1)
        self.pitch = np.empty((self.batch, cap), np.uint8)  # (B, cap)
        self.start = np.empty((self.batch, cap), np.float64)  # (B, cap)
        self.end = np.empty((self.batch, cap), np.float64)  # (B, cap)
        self.velocity = np.empty((self.batch, cap), np.uint8)  # (B, cap)

    @property
    def capacity(self) -> int:
        return self.pitch.shape[1]

    def __len__(self) -> int:
        return self.size

    def _grow(self) -> None:
        cap = self.capacity * 2
        for name in ("pitch", "start", "end", "velocity"):
            old = getattr(self, name)
            new = np.empty((self.batch, cap), old.dtype)
            new[:, :self.size] = old[:, :self.size]
            setattr(self, name, new)

    def append(self, values) -> None:
        """One note per sample: ``values`` (B, 4) array-like of pitch, start, end, velocity.

        Pitch and velocity must already be integers in 0..127 (``Generator`` rounds and clamps them).
        """
        v = np.asarray(values, dtype=np.float64)  # (B, 4); a CPU tensor converts without a copy
        if self.size == self.capacity:
            self._grow()
        i = self.size
        self.pitch[:, i] = v[:, 0]
        self.start[:, i] = v[:, 1]
        self.end[:, i] = v[:, 2]
        self.velocity[:, i] = v[:, 3]
        self.size = i + 1

    def notes(self, b: int = 0) -> Notes:
        """Sample ``b`` as ``Notes`` (``Notes.from_arrays`` of its rows)."""
        n = self.size
        return Notes.from_arrays(self.pitch[b, :n], self.start[b, :n], self.end[b, :n], self.velocity[b, :n])

    def all_notes(self) -> list[Notes]:
        return [self.notes(b) for b in range(self.batch)]


def collect_notes(gen, it, num_notes: int) -> list[Notes]:
    """Run ``gen.step()`` (a started ``generator.Generator``) over ``it``, keeping only the notes
    (~18 bytes per note, not a ``Step`` of two tensors per note): a ``NoteBuffer`` on CPU; on
    a GPU one preallocated device tensor (one transfer at the end, no sync per note)."""
    if gen.device.type != "cpu":
        import torch

        out = torch.empty((num_notes, gen.batch, 4), dtype=torch.float64, device=gen.device)  # (N, B, 4)
        for i in it:
            out[i] = gen.step().values
        v = out.transpose(0, 1).cpu().numpy()  # (B, N, 4) pitch/start/end/velocity
        return [Notes.from_arrays(x[:, 0], x[:, 1], x[:, 2], x[:, 3]) for x in v]
    buf = NoteBuffer(gen.batch, capacity=num_notes)
    for _ in it:
        buf.append(gen.step().values.numpy())  # (B, 4)
    return buf.all_notes()
