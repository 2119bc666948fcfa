"""Memory per generated note is bounded: generating and writing notes keeps compact arrays, not a
Python object per note."""
from __future__ import annotations

import tracemalloc

from musicrnn.midi import write as midiwrite
from musicrnn.notes import Notes
from musicrnn.sampling import generator as G
from musicrnn.sampling.primes import prime_bundled


def test_memory_per_generated_note_is_bounded(in_run, tmp_path, monkeypatch):
    """Python-heap peak (tracemalloc sees numpy data and every Python object, e.g. a Step and its
    tensors per note) while generating and writing 5,000 notes: <= 100 bytes per note. (The writer's
    block temporaries are a fixed cost bounded by ``midiwrite.CHUNK``; a small block keeps that fixed
    cost out of a per-note figure taken at only 5,000 notes. benchmarks/sampling_memory.py measures
    the peak RSS for 200k notes with the default block.)"""
    from musicrnn.model.checkpoint import load_network

    monkeypatch.setattr(midiwrite, "CHUNK", 1024)

    net = load_network(in_run)
    gen = G.Generator(net, 1.0, None, None, 0, "cpu")
    gen.start(prime_bundled(0, int(net.seq_length)), 1)
    G.generate_with(gen, 200)  # warm-up: lazy imports and caches are not per-note memory
    n = 5000
    tracemalloc.start()
    try:
        notes = G.generate_with(gen, n)[0]
        notes.to_midi(tmp_path / "m.mid")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(notes) == n
    assert peak / n <= 100, f"{peak / n:.0f} bytes per note"
    assert Notes.from_midi(tmp_path / "m.mid").pitch.tolist() == notes.pitch.tolist()
