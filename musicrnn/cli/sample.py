"""Generate music to MIDI files from a trained checkpoint.

    python -m musicrnn.sample --ckpt last.ckpt --num-notes 200 --seed 0 --out samples/out.mid [--wav] [--png]

The prime is a MIDI file (``--prime some.mid``, its last ``seq_length`` notes) or a random window of a
dataset split (``--prime-split validation``, default; ``--data-root`` or $MUSICRNN_DATA, else the bundled
sample). Everything is checked before anything is written: a bad checkpoint, prime, composer, device or
a missing FluidSynth for ``--wav`` is one ``error:`` line and exit code 2 with no output file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from musicrnn.cli.options import (add_checkpoint_arg, add_prime_args, add_sampling_args, choose_prime,
                                  load_checkpoint_net, set_threads)
from musicrnn.errors import ConfigError, MusicRNNError, cli_main


def output_paths(out: Path, num_samples: int) -> list[Path]:
    """out.mid for one sample; out_0.mid, out_1.mid, ... for several."""
    if num_samples == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(num_samples)]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m musicrnn.sample", description=__doc__.split("\n")[0])
    add_checkpoint_arg(p)
    add_prime_args(p)
    p.add_argument("--num-notes", type=int, default=200)
    add_sampling_args(p)
    p.add_argument("--num-samples", type=int, default=1, help="samples generated as one batch")
    p.add_argument("--out", default="samples/out.mid", help="output MIDI (out_0.mid ... with --num-samples)")
    p.add_argument("--include-prime", action="store_true", help="write the prime before the continuation")
    p.add_argument("--wav", action="store_true", help="also render a WAV with FluidSynth")
    p.add_argument("--png", action="store_true", help="also save a piano-roll PNG")
    return p


def _check_args(a: argparse.Namespace) -> Path:
    if a.num_notes < 1:
        raise ConfigError(f"--num-notes must be >= 1, got {a.num_notes}")
    if a.num_samples < 1:
        raise ConfigError(f"--num-samples must be >= 1, got {a.num_samples}")
    out = Path(a.out)
    if out.suffix.lower() not in (".mid", ".midi"):
        raise ConfigError(f"--out {out}: must end in .mid or .midi (WAV/PNG names are derived from it)")
    if out.exists() and out.is_dir():
        raise ConfigError(f"--out {out} is a folder — pass a file name such as {out / 'out.mid'}")
    return out


def _check_render(a: argparse.Namespace):
    """Import render (and matplotlib) only when --wav/--png ask for it; fail early if --wav cannot work."""
    if not (a.wav or a.png):
        return None
    from musicrnn import render

    if a.wav:
        if not render.fluidsynth_available():
            raise ConfigError(render.MISSING_FLUIDSYNTH)
        render.find_soundfont()
    return render


@cli_main
def main(argv: list[str] | None = None) -> list[Path]:
    a = _parser().parse_args(argv)
    out = _check_args(a)
    render = _check_render(a)

    from musicrnn.sampling import generator as G

    set_threads(a.threads)
    device = G.resolve_device(a.device)
    ckpt, net = load_checkpoint_net(a.ckpt, device)
    info = [f"using checkpoint {ckpt}"] if a.ckpt not in (None, "pretrained") and str(ckpt) != a.ckpt else []  # printed once all input is valid
    prime, composer = choose_prime(a, net, info)
    gen = G.Generator(net, a.temperature, a.top_k, a.top_p, a.seed, device, composer)
    gen.start(prime, a.num_samples)
    if a.seed is None:
        info.append(f"seed {gen.seed} (pass --seed {gen.seed} to repeat)")
    if info:
        print("\n".join(info), file=sys.stderr)
    samples = G.generate_with(gen, a.num_notes, progress=True)

    written: list[Path] = []
    try:
        for notes, path in zip(samples, output_paths(out, a.num_samples)):
            if a.include_prime:
                notes = G.place_after(prime, notes)
            notes.to_midi(path)
            written.append(path)
            print(f"wrote {path} ({len(notes)} notes, {notes.duration:.1f} s)")
            if a.png:
                png = render.save_piano_roll(notes, path.with_suffix(".png"))
                written.append(png)
                print(f"wrote {png}")
            if a.wav:
                wav = render.render_wav(path, path.with_suffix(".wav"))
                written.append(wav)
                print(f"wrote {wav}")
    except OSError as e:
        raise MusicRNNError(f"cannot write {e.filename or out}: {e.strerror or e} — choose another --out") from None
    return written


if __name__ == "__main__":
    main()
