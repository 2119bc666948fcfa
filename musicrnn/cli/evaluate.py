"""Evaluate a checkpoint: test-split metrics and statistics of generated samples against real music.

``python -m musicrnn.evaluate --ckpt X [--data-root PATH] [--out eval.json]`` prints and saves (JSON):
- test metrics through the same LightningModule code as training: pitch cross-entropy (nats/note),
  pitch accuracy top-1/top-5, step and duration MAE (seconds), velocity MAE and per-note NLL when
  the model defines them;
- sample statistics: samples generated at several temperatures (fixed seeds, primed from test-split
  windows) compared with the real continuations of the same windows (``musicrnn.stats.compare``:
  overlap areas of feature distributions, 1 = indistinguishable), plus piano rolls when asked.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from musicrnn.cli.options import add_threads_arg, set_threads
from musicrnn.errors import ConfigError, cli_main
from musicrnn.stats import mean_overlap
from musicrnn.io_utils import atomic_write
from musicrnn.notes import Notes

DEFAULT_TEMPERATURES = (0.8, 1.0, 1.5, 2.0)


def test_metrics(net, data_root: str | None, split: str = "test", max_windows: int | None = 20000,
                 batch_size: int = 256, sustain: bool = False, device=None) -> dict[str, float]:
    """Run the network over (a seeded subset of) the split's windows through the training code
    (``MusicModel.test_step``, Lightning's ``Trainer.test``); returns the logged test/* metrics.

    ``net``: a loaded ``MusicNet`` (with ``recorded_hparams``); ``device``: a torch.device (None = cpu).
    """
    import lightning as L

    from musicrnn.data.datamodule import MaestroDataModule
    from musicrnn.model.lightning import MusicModel

    model = MusicModel.wrap(net, **getattr(net, "recorded_hparams", {}))
    # the next note after the window the run validated on (whole-piece runs: data.val_window_length)
    window = getattr(net, "data_hparams", {}).get("val_window_length") or net.seq_length
    dm = MaestroDataModule(root=data_root, seq_length=window, batch_size=batch_size,
                           val_windows=max_windows, sustain=sustain)
    dm.prepare_data()
    dm.setup()
    if len(dm.datasets[split]) == 0:
        raise ConfigError(f"{dm.root} has no windows in the {split!r} split — use MAESTRO with its CSV "
                          f"or --split validation")
    loader = dm.test_dataloader() if split == "test" else dm.split_dataloader(split)
    accelerator = "gpu" if device is not None and device.type == "cuda" else "cpu"
    trainer = L.Trainer(accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=sys.stderr.isatty(),
                        enable_model_summary=False)
    (result,) = trainer.test(model, dataloaders=loader, verbose=False)
    return {k: float(v) for k, v in result.items()}


def sample_statistics(net, pairs: list[tuple[Notes, Notes]], temperatures=DEFAULT_TEMPERATURES,
                      seed: int = 0, device="cpu", roll_dir: Path | None = None,
                      roll_prefix: str = "sample", top_p: float | None = None) -> dict:
    """Generate a continuation of every prime at each temperature; compare with the real ones."""
    from musicrnn.sampling.generator import generate
    from musicrnn.stats import compare, describe

    real = [cont for _, cont in pairs]
    num_notes = len(real[0])
    out: dict = {"real": describe(real), "temperatures": {}}
    for t in temperatures:
        generated = []
        for j, (prime, _) in enumerate(pairs):
            (g,) = generate(net, prime, num_notes, temperature=t, top_p=top_p, seed=seed + j, device=device)
            generated.append(g)
        out["temperatures"][str(t)] = {"describe": describe(generated), "compare": compare(generated, real)}
        if roll_dir is not None:
            from musicrnn.render import save_piano_roll

            save_piano_roll(generated[0], Path(roll_dir) / f"{roll_prefix}_T{t}.png",
                            title=f"{roll_prefix}, temperature {t}")
    return out


def evaluate(ckpt: str | Path, data_root: str | None = None, *, split: str = "test",
             max_windows: int | None = 20000, temperatures=DEFAULT_TEMPERATURES, samples: int = 8,
             num_notes: int = 200, seed: int = 0, device: str = "cpu", roll_dir: Path | None = None,
             roll_prefix: str = "sample", top_p: float | None = None, ceiling: bool = False,
             prime_length: int | None = None) -> dict:
    """Test metrics and sample statistics of ``ckpt``; ``ceiling`` adds the real-vs-real overlap of two
    disjoint sets of ``samples`` real continuations (what real music scores against real music)."""
    from musicrnn.model.checkpoint import load_network
    from musicrnn.sampling.generator import resolve_device

    t0 = time.perf_counter()
    dev = resolve_device(device)  # once: metrics and sampling run on the same device
    net = load_network(ckpt, map_location="cpu")
    sustain = bool(net.data_hparams.get("sustain", False))
    metrics = test_metrics(net, data_root, split, max_windows, sustain=sustain, device=dev)
    net = net.to(dev).eval()
    from musicrnn.sampling.primes import real_excerpts

    pairs = real_excerpts(data_root, prime_length or net.seq_length, num_notes, samples, split, seed, sustain)
    stats = sample_statistics(net, pairs, temperatures, seed, device=dev, roll_dir=roll_dir, roll_prefix=roll_prefix,
                              top_p=top_p)
    if ceiling:
        from musicrnn.reference.floor_ceiling import real_ceiling

        stats["ceiling"] = real_ceiling(data_root, num_notes=num_notes, count=samples, seed=seed + 1, split=split)
    return {"ckpt": str(ckpt), "split": split, "metrics": metrics, "samples": stats,
            "parameters": sum(p.numel() for p in net.parameters()),
            "seconds": round(time.perf_counter() - t0, 1)}


@cli_main
def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m musicrnn.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", required=True, help="checkpoint written by musicrnn.fit")
    p.add_argument("--data-root", default=None, help="MIDI folder (default: $MUSICRNN_DATA or the bundled sample)")
    p.add_argument("--split", default="test", choices=["test", "validation"])
    p.add_argument("--max-windows", type=int, default=20000, help="seeded subset of windows (0 = all)")
    p.add_argument("--temperatures", type=float, nargs="+", default=list(DEFAULT_TEMPERATURES))
    p.add_argument("--samples", type=int, default=8, help="primes (and real continuations) per temperature")
    p.add_argument("--num-notes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--rolls", default=None, help="folder for piano-roll PNGs of samples per temperature")
    p.add_argument("--roll-prefix", default="sample", help="file name prefix of the piano rolls")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (default: off)")
    p.add_argument("--prime-length", type=int, default=None, help="notes of real prime (default: seq_length)")
    p.add_argument("--ceiling", action="store_true",
                   help="also compare two disjoint sets of real continuations (the overlap real music reaches)")
    p.add_argument("--out", default=None, help="write the result as JSON here")
    add_threads_arg(p)
    a = p.parse_args(argv)
    set_threads(a.threads)
    result = evaluate(a.ckpt, a.data_root, split=a.split, max_windows=a.max_windows or None,
                      temperatures=a.temperatures, samples=a.samples, num_notes=a.num_notes, seed=a.seed,
                      device=a.device, roll_dir=Path(a.rolls) if a.rolls else None, roll_prefix=a.roll_prefix,
                      top_p=a.top_p, ceiling=a.ceiling, prime_length=a.prime_length)
    m = result["metrics"]
    print("  ".join(f"{k}={v:.4f}" for k, v in sorted(m.items())), file=sys.stderr)
    overlaps = {t: mean_overlap(r["compare"]) for t, r in result["samples"]["temperatures"].items()}
    ceiling = (result["samples"].get("ceiling") or {}).get("mean_oa")
    for t, v in overlaps.items():
        share = f" ({v / ceiling:.2f} of the real-vs-real {ceiling:.3f})" if ceiling else ""
        print(f"T={t}: mean overlap with real music {v:.3f}{share}", file=sys.stderr)
    if a.out:
        with atomic_write(a.out, "w") as f:
            json.dump(result, f, indent=1)
    print(json.dumps({"metrics": m, "overlap": overlaps, "ceiling": ceiling}))
    return result


if __name__ == "__main__":
    main()
