"""Peak memory per generated note: generate N notes and write the MIDI file.

    python benchmarks/sampling_memory.py [--ckpt CKPT] [--notes 200000]

Prints one line: peak RSS delta / notes, measured from just before generation (model loaded, prime
run, one warm-up step) to the end of writing the MIDI. The peak is reset first (Linux:
``/proc/self/clear_refs`` 5 resets VmHWM to the current RSS), so set-up does not hide it. Without
``--ckpt`` a tiny LSTM(16) is built untrained (memory per note does not depend on the weights).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _status(key: str) -> int:
    """VmRSS / VmHWM of this process, bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _model(ckpt: str | None):
    from musicrnn.model.checkpoint import load_network
    from musicrnn.model.cores import LSTMNet
    from musicrnn.model.network import MusicNet

    if ckpt:
        return load_network(ckpt)
    return MusicNet(lambda d: LSTMNet(d, hidden_size=16), seq_length=25).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", default=None)
    p.add_argument("--notes", type=int, default=200_000)
    a = p.parse_args()
    import torch

    from musicrnn.sampling import generator as G
    from musicrnn.sampling.primes import prime_bundled

    torch.set_num_threads(1)
    net = _model(a.ckpt)
    gen = G.Generator(net, 1.0, None, None, 0, "cpu")
    gen.start(prime_bundled(0, int(net.seq_length)), 1)
    G.generate_with(gen, 100)  # warm-up
    out = Path(tempfile.mkdtemp()) / "bench.mid"
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    base = _status("VmRSS")
    t0 = time.perf_counter()
    notes = G.generate_with(gen, a.notes)[0]
    notes.to_midi(out)
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM")
    size = out.stat().st_size
    os.unlink(out)
    print(f"sampling memory: {a.notes} notes, peak RSS +{(peak - base) / 1e6:.1f} MB over {base / 1e6:.0f} MB "
          f"= {(peak - base) / a.notes:.1f} bytes/note (MIDI {size / 1e6:.2f} MB, {seconds:.1f} s)")


if __name__ == "__main__":
    main()
