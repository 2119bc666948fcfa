"""The ``musicrnn`` command: ``musicrnn fit|sample|live|evaluate|experiments|data|studio [options]``.

One entry point that hands the rest of the command line to the command's own ``main``; ``python -m
musicrnn.fit`` (etc.) and ``python -m musicrnn sample ...`` run exactly the same code. Only the chosen
command's module is imported (``importlib``), so ``musicrnn sample`` never loads Lightning.
"""
from __future__ import annotations

import importlib
import sys

import musicrnn

COMMANDS = {
    "fit": ("musicrnn.cli.fit", "train a model (LightningCLI)"),
    "sample": ("musicrnn.cli.sample", "generate MIDI files from a checkpoint"),
    "live": ("musicrnn.cli.live", "play generated music to a MIDI port"),
    "evaluate": ("musicrnn.cli.evaluate", "test metrics and sample statistics of a checkpoint"),
    "experiments": ("musicrnn.cli.experiments", "run experiment configs and report them"),
    "data": ("musicrnn.cli.data", "download, check, repair and count MIDI data"),
    "studio": ("musicrnn.studio.cli", "a browser page to prime, generate, see and hear (pip install -e \".[studio]\")"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: musicrnn COMMAND [options]   (musicrnn COMMAND --help for a command's options)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] == "--version":
        print(f"musicrnn {musicrnn.__version__}")
        return
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r} — use one of {', '.join(COMMANDS)} (musicrnn --help)",
              file=sys.stderr)
        sys.exit(2)
    # sys.argv stays as it is: a DDP launcher re-runs it (`musicrnn fit ...`) in each worker
    importlib.import_module(COMMANDS[name][0]).main(rest)


if __name__ == "__main__":
    main()
