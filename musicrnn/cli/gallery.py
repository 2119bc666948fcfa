"""The sample gallery (``python -m musicrnn.experiments gallery``): MIDI files of a model at given
sampling settings, each beside the real continuation of the same prime, with a piano roll of both.

For prime k (``evaluation.windows.prime_pairs``: the data module's seeded windows of the split):
``sample_k.mid`` = prime + the model's continuation, ``real_k.mid`` = prime + what the pianist played,
``roll_k.png`` = the two continuations' piano rolls (generated above, real below), and ``gallery.md``
listing them with the settings. The defaults are the shipped defaults of ``sample`` (temperature 0.9,
top-p 0.95); the folder defaults to ``outputs/gallery`` (ignored by git), so trying the command never
changes the gallery that ships in ``reports/samples`` (written with ``--out reports/samples``).
"""
from __future__ import annotations

from pathlib import Path

from musicrnn.cli.options import open_checkpoint
from musicrnn.evaluation.windows import prime_pairs
from musicrnn.io_utils import atomic_write
from musicrnn.render import save_piano_rolls
from musicrnn.sampling.defaults import DEFAULT_TEMPERATURE, DEFAULT_TIMING_TEMPERATURE, DEFAULT_TOP_P
from musicrnn.sampling.generator import generate, place_after
from musicrnn.sampling.primes import from_zero

GALLERY_OUT = "outputs/gallery"
SHIPPED_GALLERY = "reports/samples"


def write_gallery(ckpt: str | None, out_dir: Path, *, data_root: str | None = None, split: str = "test",
                  count: int = 4, num_notes: int = 200, prime_length: int = 64,
                  temperature: float = DEFAULT_TEMPERATURE, top_p: float | None = DEFAULT_TOP_P, seed: int = 0,
                  timing_temperature: float | None = DEFAULT_TIMING_TEMPERATURE) -> Path:
    loaded = open_checkpoint(ckpt)
    pairs = prime_pairs(data_root, split, prime_length, num_notes, count, seed=seed,
                        sustain=bool(loaded.data.get("sustain", False)))
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = f"temperature {temperature}" + (f", top-p {top_p}" if top_p else "")
    settings += f", timing temperature {timing_temperature}" if timing_temperature is not None else ""
    extra = {} if timing_temperature is None else {"timing_temperature": timing_temperature}
    lines = ["# Samples", "", (f"Written by `python -m musicrnn.experiments gallery` from `{loaded.path.name}` at "
             f"{settings}, seed {seed}: each prime is {prime_length} real notes of a {split}-split performance; "
             f"`sample_k.mid` continues it with {num_notes} generated notes, `real_k.mid` with the "
             f"{num_notes} notes the pianist played. Render one to WAV with "
             f"`fluidsynth -ni /usr/share/sounds/sf2/FluidR3_GM.sf2 {out_dir}/sample_0.mid -F sample_0.wav -r 44100`."),
             ""]
    for k, pair in enumerate(pairs):
        (gen,) = generate(loaded.net, pair.prime, num_notes, temperature=temperature, top_p=top_p, seed=seed + k,
                          **extra)
        place_after(pair.prime, gen).to_midi(out_dir / f"sample_{k}.mid")
        place_after(pair.prime, pair.continuation).to_midi(out_dir / f"real_{k}.mid")
        save_piano_rolls([gen, from_zero(pair.continuation)], out_dir / f"roll_{k}.png",
                         [f"prime {k}: generated ({settings})", f"prime {k}: real continuation"])
        lines += [f"## Prime {k}", "", f"[sample_{k}.mid](sample_{k}.mid) · [real_{k}.mid](real_{k}.mid)", "",
                  f"![prime {k}](roll_{k}.png)", ""]
    with atomic_write(out_dir / "gallery.md", "w") as f:
        f.write("\n".join(lines))
    return out_dir / "gallery.md"
