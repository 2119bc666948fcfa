"""Start the studio: a Gradio page on http://127.0.0.1:7860 (only this machine unless --host says otherwise).

    python -m musicrnn.studio [--ckpt PATH] [--host 127.0.0.1] [--port 7860] [--data-root DIR]

Needs the studio extra (``pip install -e ".[studio]"``); audio needs FluidSynth (``apt-get install
fluidsynth fluid-soundfont-gm``), and without it the page says so and still offers the MIDI.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from musicrnn.errors import ConfigError, cli_main

MISSING_GRADIO = 'the studio needs Gradio — install the extra: pip install -e ".[studio]" (or pip install gradio)'


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m musicrnn.studio", description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", default="pretrained",
                   help="checkpoint selected at start (default: the pretrained model); the page also lists "
                        "every .ckpt under checkpoints/")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default: this machine only; 0.0.0.0 serves every network)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--data-root", default=None,
                   help="folder of pieces to prime with (default: $MUSICRNN_DATA, else the bundled sample)")
    p.add_argument("--concurrency", type=int, default=2, help="generations running at once (more wait in a queue)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1)")
    return p


def _check(a: argparse.Namespace) -> None:
    if not 1 <= a.port <= 65535:
        raise ConfigError(f"--port must be 1..65535, got {a.port}")
    if not 1 <= a.concurrency <= 16:
        raise ConfigError(f"--concurrency must be 1..16, got {a.concurrency}")
    if a.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {a.threads}")
    if importlib.util.find_spec("gradio") is None:
        raise ConfigError(MISSING_GRADIO)


@cli_main
def main(argv: list[str] | None = None) -> None:
    a = _parser().parse_args(argv)
    _check(a)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a local tool
    import torch

    from musicrnn.studio import page, pieces, session

    torch.set_num_threads(a.threads)
    studio = session.Studio()
    choices = pieces.checkpoint_choices("checkpoints", a.ckpt)
    studio.model(a.ckpt)  # a bad --ckpt is one error line now, not a message on every request
    listed = pieces.list_pieces(a.data_root)
    app = page.build(studio, listed, [a.ckpt, *(c for c in choices if c != a.ckpt)], a.concurrency)
    print(f"musicrnn studio: http://{a.host}:{a.port} ({len(listed)} pieces, checkpoint {a.ckpt}; "
          f"files in {studio.output_root})", file=sys.stderr)
    try:
        app.queue(max_size=64).launch(server_name=a.host, server_port=a.port, max_file_size="16mb",
                                      ssr_mode=False, show_error=False, quiet=True)
    finally:
        studio.close()


if __name__ == "__main__":
    main()
