"""The data command line: ``python -m musicrnn.data {stats,repair,download} ...``.

It lives in the data package, not in ``musicrnn.cli``, because it needs nothing above the data layer
(the note cache, the download, the MIDI repair): so ``python -m musicrnn.data`` (this package's
``__main__``) runs it without a layer importing upwards. ``musicrnn.cli.data`` is the same ``main``.

- ``stats [ROOT]``: files and notes per split (parses into the note cache on first use); the last
  line is JSON.
- ``repair SRC DST``: a repaired copy of every MIDI file of SRC (line-ending damage), SRC untouched;
  SRC may also be one MIDI file (DST then a folder or a file name).
- ``download [--dest DIR] [--url URL] [--keep-zip]``: fetch, verify and unpack MAESTRO v2.0.0's MIDI.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from musicrnn.diskspace import destination_error
from musicrnn.errors import ConfigError, cli_main

REPAIR_FIX = ("free space there or choose another DST (files already written there are complete: every write "
              "is atomic; a rerun writes them again)")


def _parser() -> argparse.ArgumentParser:
    from musicrnn.data.download import OFFICIAL_URL

    p = argparse.ArgumentParser(prog="python -m musicrnn.data", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stats", help="files and notes per split; last line is JSON")
    s.add_argument("root", nargs="?", default=None, help="MIDI folder (default: bundled sample)")
    s.add_argument("--sustain", action="store_true")
    s.add_argument("--jobs", type=int, default=None)
    r = sub.add_parser("repair", help="write repaired copies of line-ending-damaged MIDI files")
    r.add_argument("src", help="a MIDI file or a folder of them (only read)")
    r.add_argument("dst", help="folder for the repaired copies (or, for one file, a file name)")
    r.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    d = sub.add_parser("download", help="fetch and verify the official MAESTRO v2.0.0 MIDI zip")
    d.add_argument("--dest", default=None, help="folder to unpack into (default: the cache folder)")
    d.add_argument("--url", default=OFFICIAL_URL, help="mirror of the official zip (same checksum)")
    d.add_argument("--keep-zip", action="store_true", help="keep the verified zip after unpacking")
    return p


@cli_main
def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.cmd == "stats":
        from musicrnn.data.cache import build_or_load

        cache = build_or_load(args.root, sustain=args.sustain, jobs=args.jobs, progress=sys.stderr.isatty())
        print(json.dumps(cache.stats()))
    elif args.cmd == "repair":
        from musicrnn.midi.tree import repair_tree  # checks the folders itself

        src = Path(args.src)
        if src.is_file():  # one file: the damaged-file hint sends users here with a file
            from musicrnn.midi.repairfile import repair_one

            print(json.dumps(repair_one(src, args.dst)))
            return
        if not src.is_dir():
            raise ConfigError(f"repair source {src} does not exist — pass a MIDI file or a folder of them as SRC")
        try:  # a full or read-only DST, also from a worker process (the pool re-raises its OSError)
            report = repair_tree(Path(args.src), Path(args.dst), progress=sys.stderr.isatty(), jobs=args.jobs)
        except OSError as e:
            if e.filename and src.resolve() in Path(e.filename).resolve().parents:
                raise ConfigError(f"repair source {src}: cannot read {e.filename} ({e.strerror}) — check its "
                                  f"permissions") from None
            raise destination_error("repair destination", args.dst, e, REPAIR_FIX) from None
        print(json.dumps({k: v for k, v in report.items() if k != "unrepairable_files"}))
    elif args.cmd == "download":
        from musicrnn.data.download import download_maestro
        from musicrnn.io_utils import cache_dir

        dest = Path(args.dest) if args.dest else cache_dir()
        print(download_maestro(dest, url=args.url, keep_zip=args.keep_zip, progress=sys.stderr.isatty()))


if __name__ == "__main__":
    main()
