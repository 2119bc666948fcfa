"""The structure numbers of a result beside the pianist's typical range (one function, so the page can
follow the project's evaluation code as it grows)."""
from __future__ import annotations

import functools

import numpy as np

from musicrnn.evaluation import stats
from musicrnn.notes import Notes

# (feature of stats.sequence_features, what the page calls it, decimals)
SHOWN = (
    ("note_density", "notes per second", 1),
    ("polyphony", "notes sounding together", 2),
    ("pitch_range", "pitch range (semitones)", 0),
    ("pc_entropy", "pitch-class entropy (bits)", 2),
    ("repeat_4gram", "repeated 4-note patterns (share)", 2),
    ("longest_run", "longest run of one pitch", 0),
    ("mean_duration", "mean duration (s)", 2),
    ("mean_velocity", "mean velocity", 0),
)
EXCERPTS = 64  # real excerpts behind each range
HEADERS = ["", "this result", "pianist (10–90 %)"]


def structure_rows(notes: Notes) -> list[list]:
    """[label, value, "lo – hi"] per feature: the notes' own number and the 10th–90th percentile of the
    same feature over real excerpts of the same length (the bundled MAESTRO sample)."""
    mine = stats.sequence_features(notes)
    ranges = _pianist_ranges(max(len(notes), 2))
    return [[label, f"{float(mine[key]):.{d}f}", f"{ranges[key][0]:.{d}f} – {ranges[key][1]:.{d}f}"]
            for key, label, d in SHOWN]


@functools.lru_cache(maxsize=32)
def _pianist_ranges(num_notes: int) -> dict[str, tuple[float, float]]:
    from musicrnn.data.cache import SAMPLE_ROOT, build_or_load
    from musicrnn.sampling.primes import real_excerpts

    build_or_load(SAMPLE_ROOT, jobs=1, progress=False)  # in this process: no worker pool inside a server
    num_notes = min(num_notes, 2000)  # longer excerpts than the sample's pieces allow are not needed
    pairs = real_excerpts(str(SAMPLE_ROOT), 1, num_notes, EXCERPTS, split="train", seed=0)
    feats = [stats.sequence_features(cont) for _, cont in pairs]
    return {key: tuple(float(q) for q in np.percentile([f[key] for f in feats], [10, 90])) for key, _, _ in SHOWN}
