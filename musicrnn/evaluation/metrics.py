"""How well a network predicts real notes: next-note metrics on a split's windows, and pitch
cross-entropy over whole pieces with carried state against only a short context, at the same notes.

Plain torch over the plain network (``MusicNet``: ``net(x, composer, state)``), no Lightning: the
numbers equal what training logs as ``val/*`` for the same windows (tested).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from musicrnn.evaluation.windows import composer_lookup, data_module, split_files

PREFIX = {"test": "test", "validation": "val", "train": "train"}


def _composer(lookup: torch.Tensor | None, ids: torch.Tensor, device) -> torch.Tensor | None:
    return None if lookup is None else lookup[ids.long().cpu()].to(device)


@torch.no_grad()
def window_metrics(net, root: str | None, split: str = "test", *, window: int | None = None,
                   max_windows: int | None = 20000, batch_size: int = 256, stride: int = 1, sustain: bool = False,
                   loss_weights: dict[str, float] | None = None, device="cpu") -> tuple[dict[str, float], list[str]]:
    """Metrics of the note after each of the split's windows (the data module's choice, a seeded subset of
    ``max_windows``): ``{prefix}/pitch_ce`` (nats), ``pitch_acc``, ``pitch_top5``, ``step_mae`` and
    ``duration_mae`` (s), ``velocity_mae``, ``nll`` (nats per note, when every head has a likelihood) and
    ``loss`` (the training weights' sum, when ``loss_weights`` are given). Prefix: test, val or train.

    Returns (metrics, notes): notes say what the reader must know (e.g. composers scored as unknown).
    """
    window = window or net.seq_length
    dm = data_module(root, window, split=split, max_windows=max_windows, batch_size=batch_size, stride=stride,
                     sustain=sustain)
    lookup, note = composer_lookup(dm, net)
    heads = net.heads
    sums: dict[str, float] = defaultdict(float)
    count = 0
    has_nll = True
    net.eval()
    for batch in dm.split_dataloader(split):
        x, composer = batch[0].to(device), batch[1]
        out, _ = net(x[:, :-1], _composer(lookup, composer, device))
        out = {k: v[:, -1] for k, v in out.items()}
        t = x[:, -1]
        tgt = {"pitch": t[:, 0].long(), "step": t[:, 1], "duration": t[:, 2], "velocity": t[:, 3]}
        ce = heads["pitch"].elementwise_loss(out["pitch"], tgt["pitch"])
        sums["pitch_ce"] += float(ce.sum())
        top = out["pitch"].topk(5, dim=-1).indices
        sums["pitch_acc"] += float((top[:, 0] == tgt["pitch"]).sum())
        sums["pitch_top5"] += float((top == tgt["pitch"][:, None]).any(-1).sum())
        for k in ("step", "duration", "velocity"):
            if k in heads:
                point = heads[k].point(out[k])
                point = point.round().clamp(1, 127) if k == "velocity" else point
                sums[f"{k}_mae"] += float((point - tgt[k]).abs().sum())
        nlls = [heads[k].nll(out[k], tgt[k]) for k in heads]
        has_nll = has_nll and all(n is not None for n in nlls)
        if has_nll:
            sums["nll"] += float(sum(n.sum() for n in nlls))
        if loss_weights:
            sums["loss"] += float(sum(loss_weights[k] * heads[k].elementwise_loss(out[k], tgt[k]).sum()
                                      for k in heads))
        count += len(t)
    if not has_nll:
        sums.pop("nll", None)
    prefix = PREFIX[split]
    return {f"{prefix}/{k}": v / max(count, 1) for k, v in sums.items()}, [note] if note else []


@torch.no_grad()
def long_context_pitch_ce(net, root: str | None, split: str = "validation", *, context: int = 50,
                          chunk: int = 512, pieces_per_batch: int = 16, max_positions: int | None = 20000,
                          windows_per_batch: int = 512, sustain: bool = False, seed: int = 0,
                          device="cpu") -> dict:
    """Every-note pitch cross-entropy (nats) of ``net`` over the split's whole files, state carried from
    the first note (``net(x, composer, state)`` chunk by chunk, ``pieces_per_batch`` files at once), and
    at the same notes with only the ``context`` notes before each as input.

    Positions: every note with at least ``context`` notes before it in its file; a seeded subset of
    ``max_positions`` of them for the short-context pass (None = all). Returns ``whole_piece`` (at those
    positions), ``short_context``, ``gain`` (short - whole: what the rest of the piece buys),
    ``whole_piece_every_note`` (every note after the first), ``positions``, ``files``, ``context``.
    """
    dm = data_module(root, context, split=split, batch_size=1, sustain=sustain, pieces=True)
    feats, offsets, composers = split_files(dm, split)
    lookup, note = composer_lookup(dm, net)
    lengths = np.diff(offsets)
    files = [k for k in np.argsort(-lengths, kind="stable") if lengths[k] > context]
    whole = {}  # file -> (n - 1,) CE of notes 1..n-1 with everything before them
    net.eval()
    for b in range(0, len(files), pieces_per_batch):
        group = files[b: b + pieces_per_batch]
        n_max = int(lengths[group[0]])
        x = torch.zeros(len(group), n_max, feats.shape[1])
        for i, k in enumerate(group):
            x[i, : lengths[k]] = feats[offsets[k]: offsets[k + 1]]
        x = x.to(device)
        comp = _composer(lookup, torch.as_tensor(composers[group]), device)
        ce, state = [], None
        for a in range(0, n_max - 1, chunk):  # padding only ever follows a file's notes: causal, never read
            out, state = net(x[:, a: min(a + chunk, n_max - 1)], comp, state)
            tgt = x[:, a + 1: min(a + chunk, n_max - 1) + 1, 0].long()
            ce.append(net.heads["pitch"].elementwise_loss(out["pitch"], tgt))
        ce = torch.cat(ce, dim=1).cpu()
        for i, k in enumerate(group):
            whole[int(k)] = ce[i, : lengths[k] - 1].numpy()
    # positions: (file, target index >= context)
    pos = np.concatenate([np.stack([np.full(lengths[k] - context, k), np.arange(context, lengths[k])], 1)
                          for k in files]) if files else np.zeros((0, 2), np.int64)
    if max_positions and max_positions < len(pos):
        pos = pos[np.sort(np.random.default_rng(seed).permutation(len(pos))[:max_positions])]
    whole_at = np.array([whole[int(k)][int(t) - 1] for k, t in pos])
    short = np.zeros(len(pos))
    for b in range(0, len(pos), windows_per_batch):
        part = pos[b: b + windows_per_batch]
        idx = torch.as_tensor(offsets[part[:, 0]] + part[:, 1])  # absolute index of each target
        rows = idx[:, None] - torch.arange(context, -1, -1)[None, :]  # (w, context + 1), target last
        w = feats[rows].to(device)
        out, _ = net(w[:, :-1], _composer(lookup, torch.as_tensor(composers[part[:, 0]]), device))
        short[b: b + len(part)] = net.heads["pitch"].elementwise_loss(out["pitch"][:, -1], w[:, -1, 0].long()).cpu()
    every = np.concatenate(list(whole.values())) if whole else np.zeros(0)
    result = {"whole_piece": float(whole_at.mean()) if len(pos) else None,
              "short_context": float(short.mean()) if len(pos) else None,
              "whole_piece_every_note": float(every.mean()) if len(every) else None,
              "positions": len(pos), "files": len(files), "context": context, "split": split}
    result["gain"] = (result["short_context"] - result["whole_piece"]) if len(pos) else None
    if note:
        result["note"] = note
    return result
