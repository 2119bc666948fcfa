"""musicrnn: learn piano performance from MIDI with PyTorch Lightning, and play it back."""

__version__ = "0.1.0"
