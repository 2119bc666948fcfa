"""musicrnn: learn piano performance from MIDI with PyTorch Lightning, and play it back.

The public API (README "Python API"): ``load`` a model, ``generate`` from a prime, ``extend`` a result
with carried state, ``write_midi`` / ``write_wav`` / ``piano_roll``, ``read_midi`` into ``Notes``.
Importing it is cheap: torch loads with the first model, and Lightning never (sampling does not need it).
"""
from musicrnn.api import (
                          DEFAULT_TEMPERATURE,
                          DEFAULT_TOP_P,
                          Piece,
                          extend,
                          fluidsynth_available,
                          generate,
                          load,
                          piano_roll,
                          read_midi,
                          write_midi,
                          write_wav,
)
from musicrnn.notes import Notes

__version__ = "0.1.0"
__all__ = [
                          "DEFAULT_TEMPERATURE",
                          "DEFAULT_TOP_P",
                          "Notes",
                          "Piece",
                          "__version__",
                          "extend",
                          "fluidsynth_available",
                          "generate",
                          "load",
                          "piano_roll",
                          "read_midi",
                          "write_midi",
                          "write_wav",
]
