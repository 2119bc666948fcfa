"""Generate music to MIDI files from a trained checkpoint.

    python -m musicrnn.sample --ckpt last.ckpt --num-notes 200 --seed 0 --out outputs/samples/out.mid [--wav] [--png]

The prime is a MIDI file (``--prime some.mid``, its last ``seq_length`` notes) or a random window of a
dataset split (``--prime-split validation``, default; ``--data-root`` or $MUSICRNN_DATA, else the bundled
sample). Everything is checked before anything is written: a bad checkpoint, prime, composer, device or
a missing FluidSynth for ``--wav`` is one ``error:`` line and exit code 2 with no output file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from musicrnn.cli.options import (
    add_checkpoint_arg,
    add_prime_args,
    add_sampling_args,
    choose_prime,
    open_checkpoint,
    run_seed,
    set_threads,
)
from musicrnn.errors import ConfigError, MusicRNNError, cli_main


def output_paths(out: Path, num_samples: int) -> list[Path]:
    """out.mid for one sample; out_0.mid, out_1.mid, ... for several."""
    if num_samples == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(num_samples)]


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default, unless its help already says it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m musicrnn.sample", description=__doc__.split("\n")[0],
                                formatter_class=_DefaultsHelp)
    add_checkpoint_arg(p)
    add_prime_args(p)
    p.add_argument("--num-notes", type=int, default=200, help="notes generated after the prime, per sample")
    add_sampling_args(p, timing=True)
    p.add_argument("--num-samples", type=int, default=1, help="samples generated as one batch")
    p.add_argument("--out", default="outputs/samples/out.mid",
                   help="output MIDI (out_0.mid ... with --num-samples; outputs/ is ignored by git)")
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


def check_outputs(a: argparse.Namespace, paths: list[Path], prime_notes: int) -> None:
    """Before generating: every output name is free of folders, and the folder takes the MIDI files."""
    from musicrnn.cli.outputs import check_folder

    for path in paths:
        for p in (path, path.with_suffix(".png"), path.with_suffix(".wav")):
            if p.is_dir():
                raise ConfigError(f"{p} is a folder, so the output cannot be written there — choose another --out")
    check_folder(paths[0].parent, (a.num_notes + int(a.include_prime) * prime_notes) * len(paths))


def write_outputs(a: argparse.Namespace, samples, paths: list[Path], prime, render) -> list[Path]:
    """Every MIDI (and PNG/WAV) of the run, all or none (``outputs.Staged``); prints what was written."""
    from musicrnn.cli.outputs import Staged
    from musicrnn.sampling.generator import place_after

    lines: list[str] = []
    with Staged() as staged:
        for notes, path in zip(samples, paths):
            if a.include_prime:
                notes = place_after(prime, notes)
            with staged.writing(path) as tmp, open(tmp, "wb") as f:
                notes.write_midi(f)
            lines.append(f"wrote {path} ({len(notes)} notes, {notes.duration:.1f} s)")
            if a.png:
                png = path.with_suffix(".png")
                with staged.writing(png) as tmp:
                    render.save_piano_roll(notes, tmp)
                lines.append(f"wrote {png}")
            if a.wav:
                wav = path.with_suffix(".wav")
                with staged.writing(wav) as tmp:
                    midi_tmp = staged.temp_of(path)
                    try:
                        render.render_wav(midi_tmp, tmp)
                    except MusicRNNError as e:  # name the real files, not the temp files
                        raise MusicRNNError(str(e).replace(str(midi_tmp), str(path)).replace(str(tmp), str(wav))
                                            + " (no file of this run was kept)") from None
                lines.append(f"wrote {wav}")
        written = staged.commit()
    print("\n".join(lines))
    return written


@cli_main
def main(argv: list[str] | None = None) -> list[Path]:
    a = _parser().parse_args(argv)
    out = _check_args(a)
    render = _check_render(a)

    from musicrnn.sampling import generator as G
    from musicrnn.sampling.budget import check_memory

    set_threads(a.threads)
    device = G.resolve_device(a.device)
    info: list[str] = []  # printed once all input is valid
    net = open_checkpoint(a.ckpt, device, info).net
    check_memory(net, a.num_samples, a.num_notes + int(a.include_prime) * net.seq_length)  # before allocating
    run_seed(a, info)  # one seed for the prime window and the sampling, printed when drawn
    prime, composer = choose_prime(a, net, info)
    gen = G.Generator(net, a.temperature, a.top_k, a.top_p, a.seed, device, composer,
                      timing_temperature=a.timing_temperature)
    gen.start(prime, a.num_samples)
    if info:
        print("\n".join(info), file=sys.stderr)
    paths = output_paths(out, a.num_samples)
    check_outputs(a, paths, len(prime))  # before generating, however long that takes
    samples = G.generate_with(gen, a.num_notes, progress=True)
    written = write_outputs(a, samples, paths, prime, render)
    return written


if __name__ == "__main__":
    main()
