"""Repair of CR-LF -> LF damage in Standard MIDI Files: put lost 0x0D bytes back, or refuse.

309 of MAESTRO v2.0.0's files lost every 0x0D in front of a 0x0A (1-8 bytes of the piano track).
A parser-guided search (``_search``) finds every set of 0x0A bytes in front of which a 0x0D makes
each track parse and end exactly at its declared length, as a DAG of parser states whose root-to-end
paths are the well-formed restorations. Usually there is one. When there are several (a misaligned
running-status stretch is valid MIDI), a Viterbi pass over the DAG (``_viterbi``) scores each path by
its musical anomalies -- what a misparse produces and a recorded performance does not -- and the
restoration is written only when exactly one path has the fewest and its last note ends where
MAESTRO's CSV says. Nothing is enumerated, so a file with millions of restorations costs what one
with two does. On MAESTRO v2.0.0 all 309 damaged files are restored.

The raw-MIDI check lives in ``midifile``; this module only adds the repair.
"""
from __future__ import annotations

import heapq
import struct
import sys
from pathlib import Path

from .errors import MidiError
from .midifile import _DATA_LEN, _header, _varlen, check_chunks, skip_channel_events

# ---------------------------------------------------------------------------------------------
# Repair of CR-LF -> LF damage: put a 0x0D back in front of some 0x0A bytes.
#
# The search reads a *virtual* restored stream from the damaged bytes. At damaged offset i the
# next restored byte is data[i], except when data[i] == 0x0A: then it may also be an inserted
# 0x0D, after which data[i] follows ("pending"). Parsing this stream event by event, the state at
# an event boundary is (i, pending, insertions so far, running status); states are expanded in
# order of i and merged, so the search is a dynamic programme over byte offsets, not a
# combinatorial one. Stretches without 0x0A are skipped with midifile.skip_channel_events (regex).
# ---------------------------------------------------------------------------------------------

MAX_CANDIDATES = 64  # default number of restorations ``restorations`` lists
_PAYLOAD_CAP = 64  # ways of reading one meta/sysex payload that are kept (more: ambiguous anyway)

_Ins = tuple  # offsets in the damaged data before which a 0x0D is inserted


def _next(data: bytes, i: int, pend: bool, lim: int) -> tuple:
    """The possible next restored bytes: ((byte, i, pending, inserted offset or -1), ...)."""
    if i >= lim:
        return ()
    if pend:
        return ((10, i + 1, False, -1),)
    b = data[i]
    if b == 10:
        return ((10, i + 1, False, -1), (13, i, True, i))
    return ((b, i + 1, False, -1),)


def _varlen_alts(data: bytes, i: int, pend: bool, lim: int) -> list:
    """All ways to read a variable-length number: [(value, i, pending, insertions), ...]."""
    out, stack = [], [(0, 0, i, pend, ())]
    while stack:
        v, n, i, p, ins = stack.pop()
        for b, i2, p2, x in _next(data, i, p, lim):
            v2, ins2 = (v << 7) | (b & 0x7F), ins + (x,) if x >= 0 else ins
            if b < 0x80:
                out.append((v2, i2, p2, ins2))
            elif n < 3:
                stack.append((v2, n + 1, i2, p2, ins2))
    return out


def _skip_alts(data: bytes, i: int, pend: bool, n: int, lim: int, data_bytes: bool) -> list:
    """All ways to read ``n`` restored bytes (all < 0x80 if ``data_bytes``): [(i, pending, ins)]."""
    front: dict[tuple[int, bool], list] = {(i, pend): [()]}
    while n > 0:
        if len(front) == 1 and not data_bytes:
            (j, p), = front
            if not p and j + n <= lim and data.find(b"\n", j, j + n) < 0:  # nothing to branch on
                return [(j + n, False, ins) for ins in front[(j, p)]]
        new: dict[tuple[int, bool], list] = {}
        for (j, p), insl in front.items():
            for b, j2, p2, x in _next(data, j, p, lim):
                if data_bytes and b >= 0x80:
                    continue
                dst = new.setdefault((j2, p2), [])
                dst.extend(ins + (x,) if x >= 0 else ins for ins in insl[: _PAYLOAD_CAP - len(dst)])
        front, n = new, n - 1
    return [(j, p, ins) for (j, p), insl in front.items() for ins in insl]


def _event_alts(data: bytes, i: int, pend: bool, status: int, budget: int, lim: int):
    """Yield every way to read one event: (i, pending, running status, insertions, is_end)."""
    for _, i1, p1, ins1 in _varlen_alts(data, i, pend, lim):  # delta time
        for b, i2, p2, x in _next(data, i1, p1, lim):
            ins2 = ins1 + (x,) if x >= 0 else ins1
            if b < 0x80 or b < 0xF0:  # channel event; b < 0x80 is its first data byte
                s = b if b >= 0x80 else status
                if not s:
                    continue
                n = _DATA_LEN[s >> 4] - (b < 0x80)
                for i3, p3, ins3 in _skip_alts(data, i2, p2, n, lim, True):
                    yield i3, p3, s, ins2 + ins3, False
            elif b == 0xFF or b == 0xF0 or b == 0xF7:
                heads = _next(data, i2, p2, lim) if b == 0xFF else ((0, i2, p2, -1),)
                for t, i3, p3, x3 in heads:  # meta type byte
                    if t >= 0x80:
                        continue
                    ins3 = ins2 + (x3,) if x3 >= 0 else ins2
                    for n, i4, p4, ins4 in _varlen_alts(data, i3, p3, lim):
                        if b == 0xFF and t == 0x2F:
                            if n == 0:
                                yield i4, p4, status, ins3 + ins4, True
                        elif n <= budget:
                            s = status if b == 0xFF else 0
                            for i5, p5, ins5 in _skip_alts(data, i4, p4, n, lim, False):
                                yield i5, p5, s, ins3 + ins4 + ins5, False


# An edge's restored bytes: damaged data[i_from:i_to] with its insertions, parsed from running status
# ``status``; data[i_from:i_skip] are channel events skipped in one go (shared by the node's edges).
_Seg = tuple  # (i_from, i_skip, i_to, status) or None for a step between chunks


class _Dag:
    """Search states as a DAG: each node keeps its incoming edges (source, insertions, segment).

    ``count`` is the (capped) number of root-to-node paths, final when the node is expanded;
    ``paths`` lists the insertion sets of some paths.
    """

    def __init__(self) -> None:
        self.edges: list[list[tuple[int, _Ins, _Seg]]] = [[]]  # node 0 is the root
        self.count: list[int] = [1]

    def node(self) -> int:
        self.edges.append([])
        self.count.append(0)
        return len(self.count) - 1

    def link(self, src: int, dst: int, ins: _Ins, seg: _Seg = None) -> None:
        self.edges[dst].append((src, ins, seg))
        self.count[dst] = min(self.count[dst] + self.count[src], 1 << 40)

    def order(self, targets: list[int]) -> list[int]:
        """Ancestors of ``targets`` (root excluded), parents first (iterative post-order DFS)."""
        order, seen, stack = [], {0}, [(t, False) for t in targets]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((src, False) for src, _, _ in self.edges[node] if src not in seen)
        return order

    def paths(self, targets: list[int], limit: int) -> list[_Ins]:
        """Up to ``limit`` insertion tuples of root-to-target paths."""
        memo: dict[int, list[_Ins]] = {0: [()]}
        for node in self.order(targets):
            edges = self.edges[node]
            if len(edges) == 1 and not edges[0][1]:
                memo[node] = memo[edges[0][0]]  # a plain chain: share the list, copy nothing
                continue
            out: list[_Ins] = []
            for src, ins, _ in edges:
                out.extend(p + ins for p in memo[src][: limit - len(out)])
            memo[node] = out
        return [p for t in targets for p in memo[t]][:limit]


def _track_alts(data: bytes, start: int, length: int, dag: _Dag, root: int, max_ins: int) -> dict[int, int]:
    """Restorations of one track starting at DAG node ``root``: {damaged offset after it: node}.

    At most ``max_ins`` bytes are inserted (for the last track: exactly the bytes it is short).
    """
    heap, nodes, ends = [(start, False, 0, 0)], {(start, False, 0, 0): root}, {}
    while heap:
        key = heapq.heappop(heap)
        src = nodes.pop(key)
        i, pend, nins, status = key
        lim = min(len(data), start + length - nins)  # restored offset may not pass the length
        i0, s0 = i, status
        if not pend:
            z = data.find(b"\n", i, lim)
            i, status = skip_channel_events(data, i, lim if z < 0 else z, status)
        for i2, p2, s2, ins, is_end in _event_alts(data, i, pend, status, length - (i - start + nins), lim):
            n2 = nins + len(ins)
            r2 = i2 - start + n2  # restored offset after the event
            if n2 > max_ins:
                continue
            if is_end:
                if r2 == length and not p2:
                    if i2 not in ends:
                        ends[i2] = dag.node()
                    dag.link(src, ends[i2], ins, (i0, i, i2, s0))
                continue
            if r2 + 4 > length:  # no room left for end-of-track (4 bytes)
                continue
            k2 = (i2, p2, n2, s2)
            if k2 not in nodes:
                nodes[k2] = dag.node()
                heapq.heappush(heap, k2)
            dag.link(src, nodes[k2], ins, (i0, i, i2, s0))
    return ends


def restorations(data: bytes, name: str = "<bytes>", limit: int = MAX_CANDIDATES) -> tuple[int, list[_Ins]]:
    """Count the sets of 0x0D insertion offsets that make ``data`` well-formed; list up to ``limit``."""
    dag, finals = _search(data, name)
    return sum(dag.count[n] for n in finals), dag.paths(finals, limit)


def _search(data: bytes, name: str) -> tuple[_Dag, list[int]]:
    """The DAG of all restorations and its final nodes.

    Each track must parse and end exactly at its declared length. Restorations that leave no
    bytes after the last track are preferred (the conversion only ever removed bytes).
    """
    ntracks, pos = _header(data, name)
    dag = _Dag()
    heap, states, finals = [(pos, 0)], {(pos, 0): 0}, []
    while heap:
        pos, k = heapq.heappop(heap)
        node = states.pop((pos, k))
        if k == ntracks:
            finals.append((pos, node))
            continue
        if pos + 8 > len(data):
            continue
        cid, start, end = data[pos : pos + 4], pos + 8, pos + 8 + struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        if cid == b"MTrk":
            # The last track may only grow by what the file is short of; earlier ones by any amount.
            max_ins = max(0, end - len(data)) if k == ntracks - 1 else len(data)
            alts, k2 = _track_alts(data, start, end - start, dag, node, max_ins), k + 1
        elif end <= len(data) and all(0x41 <= c <= 0x7A for c in cid):
            alts, k2 = {end: node}, k  # another chunk type: kept as it is
        else:
            continue
        for e, n in alts.items():
            if (e, k2) not in states:
                states[(e, k2)] = dag.node()
                heapq.heappush(heap, (e, k2))
            dag.link(n, states[(e, k2)], ())
    exact = [n for e, n in finals if e == len(data)]
    return dag, exact or [n for _, n in finals]


def insert_cr(data: bytes, ins: _Ins) -> bytes:
    """``data`` with a 0x0D inserted before each offset in ``ins``."""
    out, prev = bytearray(), 0
    for i in sorted(ins):
        out += data[prev:i]
        out.append(13)
        prev = i
    out += data[prev:]
    return bytes(out)


def note_end_seconds(data: bytes) -> float:
    """Time in seconds of the last note-on/off event, with the file's tempo map (well-formed data).

    This is what MAESTRO's ``duration`` column tracks (within about 0.1 s), unlike the file
    length, which also counts pedal events after the last note.
    """
    _, pos = _header(data, "<bytes>")
    division = struct.unpack(">H", data[12:14])[0]
    tempos: list[tuple[int, int]] = []
    last_note = 0
    while pos + 8 <= len(data):
        cid, start, end = data[pos : pos + 4], pos + 8, pos + 8 + struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        pos, i, tick, status = end, start, 0, 0
        while cid == b"MTrk" and i < end:
            delta, i = _varlen(data, i, end)
            tick += delta
            b = data[i]
            if b == 0xFF:
                mtype = data[i + 1]
                n, i = _varlen(data, i + 2, end)
                if mtype == 0x51 and n == 3:
                    tempos.append((tick, int.from_bytes(data[i : i + 3], "big")))
                i += n
            elif b == 0xF0 or b == 0xF7:
                n, i = _varlen(data, i + 1, end)
                i += n
            else:
                if b >= 0x80:
                    status, i = b, i + 1
                if 0x80 <= status < 0xA0:
                    last_note = max(last_note, tick)
                i += _DATA_LEN[status >> 4]
    if division & 0x8000:  # SMPTE time: ticks are fixed fractions of a second
        return last_note / ((256 - (division >> 8)) * (division & 0xFF))
    seconds, at, tempo = 0.0, 0, 500000
    for t, new in sorted(tempos):
        if t >= last_note:
            break
        seconds += (t - at) * tempo / 1e6 / division
        at, tempo = t, new
    return seconds + (last_note - at) * tempo / 1e6 / division


def _parse_events(b: bytes, status: int) -> tuple[list, int]:
    """Events of well-formed track bytes ``b`` as (kind, note key or -1, note sounds after it);
    also the running status after them.

    ``kind`` is what a misparse gets wrong and a performance repeats: the status byte (channel
    included), plus the number for a controller, or the type for a meta event.
    """
    out, i, n = [], 0, len(b)
    while i < n:
        _, i = _varlen(b, i, n)
        c = b[i]
        if c == 0xFF:
            t = b[i + 1]
            m, i = _varlen(b, i + 2, n)
            out.append(((0xFF, t), -1, False))
            i += m
        elif c == 0xF0 or c == 0xF7:
            m, i = _varlen(b, i + 1, n)
            out.append(((0xF0,), -1, False))
            i, status = i + m, 0
        else:
            if c >= 0x80:
                status, i = c, i + 1
            hi = status >> 4
            if hi == 8 or hi == 9:
                out.append(((status,), (status & 15) * 128 + b[i], hi == 9 and b[i + 1] > 0))
            else:
                out.append(((status, b[i]) if hi == 11 else (status,), -1, False))
            i += _DATA_LEN[hi]
    return out, status


def _edge_events(data: bytes, ins: _Ins, seg: _Seg, cache: dict) -> list:
    """The events of one DAG edge (see ``_Seg``); the skipped prefix is parsed once per node."""
    i0, i1, i2, status = seg
    head = cache.get((i0, i1, status))
    if head is None:
        head = cache[(i0, i1, status)] = _parse_events(data[i0:i1], status)
    tail, _ = _parse_events(insert_cr(data[i1:i2], tuple(x - i1 for x in ins)), head[1])
    return head[0] + tail


def _viterbi(data: bytes, dag: _Dag, finals: list[int]) -> tuple[int, int, _Ins]:
    """(fewest anomalies, number of restorations with that many, insertions of one of them).

    An anomaly is an event kind (see ``_parse_events``) used fewer than ``RARE_CONTROLLER`` times
    on the edges every restoration shares (the unambiguous bulk of the file), a note struck while
    it sounds, or a note released while silent. The first is local to an edge; the other two
    need only the set of sounding notes, which is the Viterbi state next to the DAG node. Paths
    that differ somewhere soon agree on that set again (the next event of each differing note
    resets it), so few states live per node, and equal ones are merged: exact, not beam search.
    """
    order = dag.order(finals)
    fwd, bwd = {0: 1}, dict.fromkeys(finals, 1)
    for node in order:
        fwd[node] = sum(fwd[src] for src, _, _ in dag.edges[node])
    for node in reversed(order):
        for src, _, _ in dag.edges[node]:
            bwd[src] = bwd.get(src, 0) + bwd.get(node, 0)
    total = sum(fwd[f] for f in finals)
    cache: dict = {}
    events: dict[tuple[int, int], list] = {}
    kinds: dict[tuple, int] = {}
    for node in order:
        for k, (src, ins, seg) in enumerate(dag.edges[node]):
            if seg is not None:
                events[node, k] = evs = _edge_events(data, ins, seg, cache)
                if fwd[src] * bwd.get(node, 0) == total:  # on every path: certain
                    for kind, _, _ in evs:
                        kinds[kind] = kinds.get(kind, 0) + 1
    usual = {kind for kind, n in kinds.items() if n >= RARE_CONTROLLER}
    # best[node]: {sounding notes (bit mask): (anomalies, paths with that many, back pointer)}
    best: dict[int, dict[int, tuple]] = {0: {0: (0, 1, None)}}
    for node in order:
        states: dict[int, tuple] = {}
        for k, (src, ins, seg) in enumerate(dag.edges[node]):
            evs = events.get((node, k), ())
            for snd0, (c, n, _) in best[src].items():
                snd = 0 if seg is None else snd0  # a new track starts silent
                for kind, key, on in evs:
                    c += kind not in usual
                    if key >= 0:
                        bit = 1 << key
                        c += bool(snd & bit) == on
                        snd = snd | bit if on else snd & ~bit
                cur = states.get(snd)
                if cur is None or c < cur[0]:
                    states[snd] = (c, n, (src, snd0, ins))
                elif c == cur[0]:
                    states[snd] = (c, cur[1] + n, cur[2])
        best[node] = states
    ends = [(s[0], s[1], node, snd) for node in finals for snd, s in best[node].items()]
    fewest = min(e[0] for e in ends)
    node, snd = next((node, snd) for c, _, node, snd in ends if c == fewest)
    ins: _Ins = ()
    while node:
        node, snd, edge_ins = best[node][snd][2]
        ins = edge_ins + ins
    return fewest, sum(n for c, n, _, _ in ends if c == fewest), ins


DURATION_TOLERANCE = 0.25  # s; MAESTRO's duration vs. last note time: -0.08..+0.04 s on intact files
RARE_CONTROLLER = 3  # an event kind used fewer times than this in a file's certain part is suspicious


def repair_bytes(data: bytes, expected_duration: float | None = None, name: str = "<bytes>") -> bytes:
    """Undo CR-LF -> LF damage: return ``data`` with its lost 0x0D bytes put back, or raise MidiError.

    An intact file is returned unchanged. Otherwise every well-formed restoration is found (see
    ``restorations``); a unique one is returned. Several are told apart by their musical
    anomalies (``_viterbi``: a misparse strikes sounding notes, releases silent ones, invents
    event kinds the rest of the file never uses; restorations differ only where they misparse):
    exactly one must have the fewest, and its last note must end within ``DURATION_TOLERANCE``
    of ``expected_duration`` (seconds, e.g. MAESTRO's ``duration`` column), which must be known.
    Otherwise the file cannot be repaired with certainty and MidiError says so.
    """
    try:
        check_chunks(data, name)
        return data
    except MidiError:
        pass
    dag, finals = _search(data, name)
    total = sum(dag.count[n] for n in finals)
    if total == 0:
        raise MidiError(
            f"{name}: cannot be repaired — putting back line-ending bytes (0x0D) does not make it a "
            "well-formed MIDI file; re-download it"
        )
    if total == 1:
        return _restored(data, dag.paths(finals, 1)[0], name)
    how = f"{total} different restorations are well-formed"
    if expected_duration is None:
        raise MidiError(f"{name}: cannot be repaired with certainty — {how} and no duration is known; re-download it")
    fewest, ties, ins = _viterbi(data, dag, finals)
    if ties > 1:
        raise MidiError(
            f"{name}: cannot be repaired with certainty — {how} and {ties} of them have the fewest "
            f"anomalies ({fewest}); re-download it"
        )
    fixed = _restored(data, ins, name)
    seconds = note_end_seconds(fixed)
    if abs(seconds - expected_duration) > DURATION_TOLERANCE:
        raise MidiError(
            f"{name}: cannot be repaired with certainty — {how}; the likeliest ends at {seconds:.2f} s, "
            f"not at the expected {expected_duration:.2f} s; re-download it"
        )
    return fixed


def _restored(data: bytes, ins: _Ins, name: str) -> bytes:
    fixed = insert_cr(data, ins)
    check_chunks(fixed, name)  # the search and the checker agree; a bug if not
    return fixed


METADATA_SUFFIXES = {".csv", ".json"}
MIDI_SUFFIXES = {".mid", ".midi"}


def _repair_file(task: tuple[str, str, str, float | None]) -> tuple[str, str, str]:
    """Repair one file into place: (relative path, "intact" | "repaired" | "unrepairable", reason)."""
    from .io_utils import atomic_write

    src, dst, rel, duration = task
    try:
        data = Path(src).read_bytes()
        fixed = repair_bytes(data, duration, rel)
    except MidiError as e:
        return rel, "unrepairable", str(e)
    except OSError as e:
        return rel, "unrepairable", f"{rel}: cannot be read ({e.strerror})"
    with atomic_write(dst) as f:
        f.write(fixed)
    return rel, "intact" if fixed is data else "repaired", ""


def _durations(src: Path) -> dict[str, float]:
    """MAESTRO's expected durations by relative MIDI path, from ``maestro-v2.0.0.csv`` if present."""
    import csv

    path = src / "maestro-v2.0.0.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["midi_filename"]: float(r["duration"]) for r in csv.DictReader(f) if r.get("duration")}


def repair_tree(src: Path, dst: Path, progress: bool = True, jobs: int = 2) -> dict:
    """Write a repaired copy of every MIDI file under ``src`` to the same relative path under ``dst``.

    Intact files are copied as they are, damaged ones repaired (``repair_bytes``, with MAESTRO's
    CSV durations when the CSV is there), unrepairable ones left out and listed with the reason.
    Metadata (.csv/.json) and LICENSE/README files are copied too. ``src`` is only read; every
    write is atomic. Returns the report, also written to ``dst/repair_report.json``.
    """
    import json
    import shutil

    from .errors import ConfigError
    from .io_utils import atomic_write

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise ConfigError(f"repair source {src} is not a folder — pass the MAESTRO folder as SRC")
    s, d = src.resolve(), dst.resolve()
    if d == s or s in d.parents:
        raise ConfigError(f"repair destination {dst} is inside the source {src} — choose a folder outside it")
    files = sorted(p for p in src.rglob("*") if p.is_file())
    durations = _durations(src)
    tasks = []
    for p in files:
        rel = p.relative_to(src).as_posix()
        if p.suffix.lower() in MIDI_SUFFIXES:
            tasks.append((str(p), str(dst / rel), rel, durations.get(rel)))
        elif p.suffix.lower() in METADATA_SUFFIXES or p.name.upper().startswith(("LICENSE", "README")):
            if rel != "repair_report.json":
                with atomic_write(dst / rel) as f, open(p, "rb") as g:
                    shutil.copyfileobj(g, f)
    results = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="repair", unit="file", file=sys.stderr)
    if jobs > 1 and len(tasks) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(jobs, len(tasks))) as pool:
            for r in pool.imap_unordered(_repair_file, tasks, chunksize=4):
                results.append(r)
                bar and bar.update()
    else:
        for t in tasks:
            results.append(_repair_file(t))
            bar and bar.update()
    if bar is not None:
        bar.close()
    results.sort()
    status = [r[1] for r in results]
    report = {
        "files": len(results),
        "intact": status.count("intact"),
        "repaired": status.count("repaired"),
        "unrepairable": status.count("unrepairable"),
        "unrepairable_files": [{"file": rel, "reason": why} for rel, st, why in results if st == "unrepairable"],
    }
    with atomic_write(dst / "repair_report.json", "w") as f:
        json.dump(report, f, indent=2)
    return report
