"""How much memory a sampling run needs, checked before anything is allocated.

Why: ``--num-notes 10**9`` or ``--num-samples 10**9`` used to end in a numpy ``_ArrayMemoryError`` or a
torch ``DefaultCPUAllocator`` traceback (or the OOM killer). Both sizes are known before sampling starts,
so the run is refused up front with the estimate and the machine's available memory.

The estimate is deliberately rough and on the high side: per sample, the prime's pass over
``seq_length`` positions (inputs, core activations, head outputs, float32); per note, the ``NoteBuffer``
(18 B) and the ``Notes`` of every sample (20 B), plus, while one sample is sorted and written, its
order, copies and MIDI event keys (~80 B).
"""
from __future__ import annotations

from torch import nn

from musicrnn.memory import check_fits

NOTE_BYTES_PER_SAMPLE = 40
NOTE_BYTES_WRITING = 80
CORE_FLOATS_PER_UNIT = 3  # LSTM(512), batch 200: measured ~1,340 floats per sample and position (this gives ~1,900)


def estimate_bytes(net, num_samples: int, num_notes: int) -> int:
    """Bytes that generating ``num_notes`` notes for ``num_samples`` samples of ``net`` (a ``MusicNet``)
    and writing them need beyond the network itself."""
    head_width = sum(m.out_features for m in net.heads.modules() if isinstance(m, nn.Linear))
    per_position = 4 * (4 + net.input_size + CORE_FLOATS_PER_UNIT * net.core.out_dim + head_width)
    per_note = NOTE_BYTES_PER_SAMPLE * num_samples + NOTE_BYTES_WRITING
    return num_samples * net.seq_length * per_position + num_notes * per_note


def check_memory(net, num_samples: int, num_notes: int) -> None:
    """ConfigError naming the estimate and the machine's available memory when the run cannot fit."""
    check_fits(estimate_bytes(net, num_samples, num_notes),
               f"sampling {num_notes:,} notes x {num_samples:,} samples",
               "lower --num-notes or --num-samples (or make several runs)")
