"""The sample gallery (``python -m musicrnn.experiments gallery``): MIDI files of a model at given
sampling settings, each beside the real continuation of the same prime, with a piano roll of both.

For prime k (a seeded window of the split): ``sample_k.mid`` = prime + the model's continuation,
``real_k.mid`` = prime + what the pianist played, ``roll_k.png`` = the two continuations' piano rolls
(generated above, real below), and ``gallery.md`` listing them with the settings.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from musicrnn.io_utils import atomic_write


def write_gallery(ckpt: str | None, out_dir: Path, *, data_root: str | None = None, split: str = "test",
                  count: int = 4, num_notes: int = 200, prime_length: int = 64, temperature: float = 1.0,
                  top_p: float | None = None, seed: int = 0) -> Path:
    from musicrnn.model.checkpoint import find_checkpoint, load_network
    from musicrnn.render import save_piano_rolls
    from musicrnn.sampling.generator import generate, place_after
    from musicrnn.sampling.primes import from_zero, real_excerpts

    path = find_checkpoint(ckpt)
    net = load_network(path)
    pairs = real_excerpts(data_root, prime_length, num_notes, count, split, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = f"temperature {temperature}" + (f", top-p {top_p}" if top_p else "")
    lines = ["# Samples", "", f"Written by `python -m musicrnn.experiments gallery` from `{path.name}` at {settings}, "
             f"seed {seed}: each prime is {prime_length} real notes of a {split}-split performance (MAESTRO); "
             f"`sample_k.mid` continues it with {num_notes} generated notes, `real_k.mid` with the "
             f"{num_notes} notes the pianist played. Render one to WAV with "
             "`fluidsynth -ni /usr/share/sounds/sf2/FluidR3_GM.sf2 reports/samples/sample_0.mid -F sample_0.wav -r 44100`.",
             ""]
    for k, (prime, real) in enumerate(pairs):
        (gen,) = generate(net, prime, num_notes, temperature=temperature, top_p=top_p, seed=seed + k)
        place_after(prime, gen).to_midi(out_dir / f"sample_{k}.mid")
        _continue(prime, real).to_midi(out_dir / f"real_{k}.mid")
        save_piano_rolls([gen, from_zero(real)], out_dir / f"roll_{k}.png",
                         [f"prime {k}: generated ({settings})", f"prime {k}: real continuation"])
        lines += [f"## Prime {k}", "", f"[sample_{k}.mid](sample_{k}.mid) · [real_{k}.mid](real_{k}.mid)", "",
                  f"![prime {k}](roll_{k}.png)", ""]
    with atomic_write(out_dir / "gallery.md", "w") as f:
        f.write("\n".join(lines))
    return out_dir / "gallery.md"


def _continue(prime, real):
    """prime + the real continuation, at its original distance from the prime."""
    from musicrnn.notes import Notes
    from musicrnn.sampling.primes import from_zero

    both = Notes(np.concatenate([prime.pitch, real.pitch]), np.concatenate([prime.start, real.start]),
                 np.concatenate([prime.end, real.end]), np.concatenate([prime.velocity, real.velocity]))
    return from_zero(both)
