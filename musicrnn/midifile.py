"""Standard MIDI File checks and line-ending repair (the only place that looks at raw MIDI bytes).

Why a strict check: 309 of MAESTRO v2.0.0's files went through a CR-LF -> LF conversion that deleted
every 0x0D byte in front of a 0x0A byte. Such a file still *looks* like MIDI, and lenient readers
silently mis-time or drop notes. ``check_chunks`` therefore parses every track's events and insists
that they end (with end-of-track) exactly where the track header says. It runs on every file during
cache builds, so channel-event runs are matched by one compiled regex (C speed) and only meta/sysex
events are stepped through in Python.

Repair (``repair_bytes`` / ``repair_tree``): a parser-guided search puts 0x0D back in front of some
0x0A bytes so that every track has its declared length and parses. Usually several restorations
parse (a misaligned running-status stretch is valid MIDI); the expected duration, then note/pedal
consistency, picks one, or the file is reported as unrepairable. On MAESTRO v2.0.0: 306 of the
309 damaged files are restored, 3 are too ambiguous.
"""
from __future__ import annotations

import re
import sys
import struct
from pathlib import Path

from .errors import MidiError

REPAIR_HINT = "repair it with `python -m musicrnn.data repair SRC DST`"

# Data bytes that follow a channel status byte 0x80..0xEF (index: status >> 4).
_DATA_LEN = {8: 2, 9: 2, 10: 2, 11: 2, 12: 1, 13: 1, 14: 2}

_DELTA = rb"[\x80-\xff]{0,3}[\x00-\x7f]"
_RUN2 = rb"(?:" + _DELTA + rb"([\x80-\xbf\xe0-\xef])[\x00-\x7f]{2}(?:" + _DELTA + rb"[\x00-\x7f]{2})*)"
_RUN1 = rb"(?:" + _DELTA + rb"([\xc0-\xdf])[\x00-\x7f](?:" + _DELTA + rb"[\x00-\x7f])*)"
# Any number of channel events, each run starting with an explicit status byte; running-status
# events belong to the run of their status, so the data-byte count is always right.
_CHANNEL = re.compile(rb"(?:" + _RUN2 + rb"|" + _RUN1 + rb")*")
# Running-status continuations (after a meta event, which does not cancel running status).
_CONT = {
    2: re.compile(rb"(?:" + _DELTA + rb"[\x00-\x7f]{2})*"),
    1: re.compile(rb"(?:" + _DELTA + rb"[\x00-\x7f])*"),
}


def skip_channel_events(data: bytes, pos: int, end: int, status: int) -> tuple[int, int]:
    """Skip well-formed channel events in ``data[pos:end]``; return (new pos, running status).

    ``status`` is the running status in effect at ``pos`` (0 for none).
    """
    if status:
        pos = _CONT[_DATA_LEN[status >> 4]].match(data, pos, end).end()
    m = _CHANNEL.match(data, pos, end)
    if m.end() > pos:
        s2, s1 = m.start(1), m.start(2)
        status = data[max(s2, s1)]
        pos = m.end()
    return pos, status


class _Bad(Exception):
    """Internal: the track does not parse; ``args[0]`` says why, ``args[1]`` where."""


def _varlen(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    for k in range(4):
        if pos >= end:
            raise _Bad("truncated variable-length number", pos)
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos
    raise _Bad("variable-length number longer than 4 bytes", pos)


def parse_track(data: bytes, pos: int, end: int) -> int:
    """Parse events from ``pos``; return the position just after end-of-track (FF 2F 00).

    Raises ``_Bad`` at the first malformed event or when ``end`` is reached without end-of-track.
    Meta events keep running status (as mido does); sysex cancels it (as the SMF spec says).
    """
    status = 0
    while True:
        pos, status = skip_channel_events(data, pos, end, status)
        if pos >= end:
            raise _Bad("no end-of-track event", pos)
        _, pos = _varlen(data, pos, end)  # delta time
        if pos >= end:
            raise _Bad("truncated event", pos)
        b = data[pos]
        if b == 0xFF:
            if pos + 1 >= end or data[pos + 1] >= 0x80:
                raise _Bad("bad meta event type", pos)
            mtype = data[pos + 1]
            n, pos = _varlen(data, pos + 2, end)
            if pos + n > end:
                raise _Bad("meta event runs past the track end", pos)
            pos += n
            if mtype == 0x2F:
                if n != 0:
                    raise _Bad("end-of-track event with data", pos)
                return pos
        elif b == 0xF0 or b == 0xF7:
            n, pos = _varlen(data, pos + 1, end)
            if pos + n > end:
                raise _Bad("sysex event runs past the track end", pos)
            pos += n
            status = 0
        elif b >= 0xF0:
            raise _Bad(f"invalid status byte 0x{b:02X}", pos)
        else:
            if b >= 0x80:
                status, pos = b, pos + 1
            elif not status:
                raise _Bad("running status without a preceding status byte", pos)
            n = _DATA_LEN[status >> 4]
            if pos + n > end:
                raise _Bad("truncated channel event", pos)
            for q in range(pos, pos + n):
                if data[q] >= 0x80:
                    raise _Bad(f"data byte 0x{data[q]:02X} >= 0x80", q)
            pos += n


def _header(data: bytes, name: str) -> tuple[int, int]:
    """Check the MThd chunk; return (ntracks, offset of the first chunk after it)."""
    if len(data) == 0:
        raise MidiError(f"{name}: empty file — not a MIDI file")
    if data[:4] != b"MThd" or len(data) < 14:
        raise MidiError(f"{name}: not a Standard MIDI File (no MThd header) — use a .mid/.midi file")
    hlen, fmt, ntracks, _division = struct.unpack(">IHHH", data[4:14])
    if hlen < 6 or fmt > 2 or 8 + hlen > len(data):
        raise MidiError(f"{name}: bad MIDI header (length {hlen}, format {fmt}) — the file is damaged")
    if ntracks == 0:
        raise MidiError(f"{name}: MIDI file has no tracks — nothing to read")
    return ntracks, 8 + hlen


def _chunk_at(data: bytes, pos: int, k: int, name: str) -> tuple[bytes, int, int]:
    """The chunk header at ``pos``: (id, data start, declared end); MidiError on garbage."""
    cid, clen = data[pos : pos + 4], struct.unpack(">I", data[pos + 4 : pos + 8])[0]
    if cid != b"MTrk" and not all(0x41 <= c <= 0x7A for c in cid):
        raise MidiError(f"{name}: garbage where track {k} should start (byte {pos}) — {REPAIR_HINT}")
    return cid, pos + 8, pos + 8 + clen


def _bytes(n: int) -> str:
    return f"{n} byte" if n == 1 else f"{n} bytes"


def check_chunks(data: bytes, name: str = "<bytes>") -> None:
    """Raise MidiError unless ``data`` is a well-formed Standard MIDI File, event by event.

    Every MTrk must parse (delta times, running status, channel data bytes < 0x80, meta and sysex
    lengths) and its end-of-track event must be its last byte. A track that ends early is the
    signature of line-ending damage, and the message says how to repair it. Chunks after the
    declared number of tracks are ignored (as every reader does).
    """
    ntracks, pos = _header(data, name)
    k = 0
    while k < ntracks and pos + 8 <= len(data):
        cid, start, end = _chunk_at(data, pos, k, name)
        pos = end
        if cid != b"MTrk":
            continue
        try:
            stop = parse_track(data, start, min(end, len(data)))
        except _Bad as e:
            why, where = e.args
            if end > len(data):
                raise MidiError(
                    f"{name}: track {k} is {_bytes(end - len(data))} shorter than its header says "
                    f"(line-ending damage or truncation) — {REPAIR_HINT}"
                ) from None
            raise MidiError(
                f"{name}: track {k} is malformed ({why} at byte {where}) — the file is damaged; "
                f"re-download it or {REPAIR_HINT}"
            ) from None
        if stop != end:
            raise MidiError(
                f"{name}: track {k} is {_bytes(end - stop)} shorter than its header says "
                f"(line-ending damage) — {REPAIR_HINT}"
            )
        k += 1
    if k < ntracks:
        raise MidiError(
            f"{name}: header declares {ntracks} tracks, file has {k} — the file is truncated; re-download it"
        )


def read_checked(path: str | Path) -> bytes:
    """Read a MIDI file's bytes and check it; MidiError on a missing or damaged file."""
    path = Path(path)
    if not path.exists():
        raise MidiError(f"{path}: no such MIDI file — check the path")
    if path.is_dir():
        raise MidiError(f"{path}: is a folder, not a MIDI file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MidiError(f"{path}: cannot be read ({e.strerror}) — check its permissions") from None
    check_chunks(data, str(path))
    return data


# ---------------------------------------------------------------------------------------------
# Repair of CR-LF -> LF damage: put a 0x0D back in front of some 0x0A bytes.
#
# The search reads a *virtual* restored stream from the damaged bytes. At damaged offset i the
# next restored byte is data[i], except when data[i] == 0x0A: then it may also be an inserted
# 0x0D, after which data[i] follows ("pending"). Parsing this stream event by event, the state at
# an event boundary is (i, pending, insertions so far, running status); states are expanded in
# order of i and merged, so the search is a dynamic programme over byte offsets, not a
# combinatorial one. Stretches without 0x0A are skipped with the regex parser above.
# ---------------------------------------------------------------------------------------------

MAX_CANDIDATES = 64  # restorations of one plausible duration compared exactly; more: ambiguous
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
    """Yield every way to read one event: (i, pending, running status, insertions, is_end, delta)."""
    for dt, i1, p1, ins1 in _varlen_alts(data, i, pend, lim):  # delta time
        for b, i2, p2, x in _next(data, i1, p1, lim):
            ins2 = ins1 + (x,) if x >= 0 else ins1
            if b < 0x80 or b < 0xF0:  # channel event; b < 0x80 is its first data byte
                s = b if b >= 0x80 else status
                if not s:
                    continue
                n = _DATA_LEN[s >> 4] - (b < 0x80)
                for i3, p3, ins3 in _skip_alts(data, i2, p2, n, lim, True):
                    yield i3, p3, s, ins2 + ins3, False, dt
            elif b == 0xFF or b == 0xF0 or b == 0xF7:
                heads = _next(data, i2, p2, lim) if b == 0xFF else ((0, i2, p2, -1),)
                for t, i3, p3, x3 in heads:  # meta type byte
                    if t >= 0x80:
                        continue
                    ins3 = ins2 + (x3,) if x3 >= 0 else ins2
                    for n, i4, p4, ins4 in _varlen_alts(data, i3, p3, lim):
                        if b == 0xFF and t == 0x2F:
                            if n == 0:
                                yield i4, p4, status, ins3 + ins4, True, dt
                        elif n <= budget:
                            s = status if b == 0xFF else 0
                            for i5, p5, ins5 in _skip_alts(data, i4, p4, n, lim, False):
                                yield i5, p5, s, ins3 + ins4 + ins5, False, dt


def _delta_sum(data: bytes, i: int, end: int, status: int) -> int:
    """Sum of the delta times of the well-formed channel events in ``data[i:end]``."""
    total = 0
    while i < end:
        v = 0
        while True:
            b = data[i]
            i += 1
            v = (v << 7) | (b & 0x7F)
            if b < 0x80:
                break
        total += v
        if data[i] >= 0x80:
            status = data[i]
            i += 1
        i += _DATA_LEN[status >> 4]
    return total


_TICK_CAP = 1 << 16  # distinct tick totals tracked per search node; more: give up (ambiguous anyway)


class _Dag:
    """Search states as a DAG: each node keeps its incoming edges (source, insertions, ticks).

    ``count`` is the (capped) number of root-to-node paths, final when the node is expanded.
    ``tick_totals`` groups paths by their summed delta times, which is how restorations differ
    in duration; ``paths`` lists the insertion sets of paths, optionally of one tick total.
    """

    def __init__(self) -> None:
        self.edges: list[list[tuple[int, _Ins, int]]] = [[]]  # node 0 is the root
        self.count: list[int] = [1]
        self.ticks: dict[int, tuple[dict[int, int], int] | None] = {}

    def node(self) -> int:
        self.edges.append([])
        self.count.append(0)
        return len(self.count) - 1

    def link(self, src: int, dst: int, ins: _Ins, ticks: int = 0) -> None:
        self.edges[dst].append((src, ins, ticks))
        self.count[dst] = min(self.count[dst] + self.count[src], 1 << 40)

    def _order(self, targets: list[int]) -> list[int]:
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

    def tick_totals(self, targets: list[int]) -> list[dict[int, int] | None]:
        """For each target, {summed ticks: number of paths}, or None when there are too many."""
        self.ticks = {0: ({0: 1}, 0)}  # node -> (base dict, offset): chains share their base
        for node in self._order(targets):
            edges = self.edges[node]
            if len(edges) == 1:
                src, _, t = edges[0]
                got = self.ticks[src]
                self.ticks[node] = None if got is None else (got[0], got[1] + t)
                continue
            out: dict[int, int] | None = {}
            for src, _, t in edges:
                got = self.ticks[src]
                if got is None or out is None or len(out) > _TICK_CAP:
                    out = None
                    break
                base, off = got
                for k, c in base.items():
                    out[k + off + t] = out.get(k + off + t, 0) + c
            self.ticks[node] = None if out is None else (out, 0)
        res = []
        for t in targets:
            got = self.ticks[t]
            res.append(None if got is None else {k + got[1]: c for k, c in got[0].items()})
        return res

    def _has(self, node: int, total: int) -> bool:
        base, off = self.ticks[node]
        return (total - off) in base

    def paths(self, targets: list[int], limit: int, total: int | None = None) -> list[_Ins]:
        """Up to ``limit`` insertion tuples of root-to-target paths (of tick sum ``total`` if given;
        needs ``tick_totals`` first)."""
        if total is None:
            memo: dict[int, list[_Ins]] = {0: [()]}
            for node in self._order(targets):
                edges = self.edges[node]
                if len(edges) == 1 and not edges[0][1]:
                    memo[node] = memo[edges[0][0]]  # a plain chain: share the list, copy nothing
                    continue
                out: list[_Ins] = []
                for src, ins, _ in edges:
                    out.extend(p + ins for p in memo[src][: limit - len(out)])
                memo[node] = out
            return [p for t in targets for p in memo[t]][:limit]
        found: list[_Ins] = []
        stack = [(t, total, ()) for t in targets if self._has(t, total)]
        while stack and len(found) < limit:
            node, need, suffix = stack.pop()
            while node:
                edges = self.edges[node]
                if len(edges) > 1:
                    stack.extend((s, need - t, ins + suffix) for s, ins, t in edges if self._has(s, need - t))
                    break
                node, ins, t = edges[0]
                need, suffix = need - t, ins + suffix
            else:
                if need == 0:
                    found.append(suffix)
        return found


def _track_alts(data: bytes, start: int, length: int, dag: _Dag, root: int, max_ins: int) -> dict[int, int]:
    """Restorations of one track starting at DAG node ``root``: {damaged offset after it: node}.

    At most ``max_ins`` bytes are inserted (for the last track: exactly the bytes it is short).
    """
    import heapq

    heap, nodes, ends = [(start, False, 0, 0)], {(start, False, 0, 0): root}, {}
    while heap:
        key = heapq.heappop(heap)
        src = nodes.pop(key)
        i, pend, nins, status = key
        lim = min(len(data), start + length - nins)  # restored offset may not pass the length
        skipped = 0
        if not pend:
            z = data.find(b"\n", i, lim)
            i0, s0 = i, status
            i, status = skip_channel_events(data, i, lim if z < 0 else z, status)
            skipped = _delta_sum(data, i0, i, s0)
        for i2, p2, s2, ins, is_end, dt in _event_alts(data, i, pend, status, length - (i - start + nins), lim):
            n2 = nins + len(ins)
            r2 = i2 - start + n2  # restored offset after the event
            if n2 > max_ins:
                continue
            if is_end:
                if r2 == length and not p2:
                    if i2 not in ends:
                        ends[i2] = dag.node()
                    dag.link(src, ends[i2], ins, skipped + dt)
                continue
            if r2 + 4 > length:  # no room left for end-of-track (4 bytes)
                continue
            k2 = (i2, p2, n2, s2)
            if k2 not in nodes:
                nodes[k2] = dag.node()
                heapq.heappush(heap, k2)
            dag.link(src, nodes[k2], ins, skipped + dt)
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
    import heapq

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
    return _summary(data)[0]


def _summary(data: bytes) -> tuple[float, int, float]:
    """(last note time in seconds, anomalies, seconds per tick there) of well-formed ``data``.

    Anomalies are what a misparse produces and a recorded performance does not: a note struck
    while it sounds, a note released while silent, a controller number used fewer than
    ``RARE_CONTROLLER`` times.
    """
    _, pos = _header(data, "<bytes>")
    division = struct.unpack(">H", data[12:14])[0]
    if division & 0x8000:  # SMPTE time: ticks are fixed fractions of a second
        tick_s = 1.0 / ((256 - (division >> 8)) * (division & 0xFF))
        division = 0
    tempos: list[tuple[int, int]] = []
    last_note, controllers, anomalies = 0, {}, 0
    while pos + 8 <= len(data):
        cid, start, end = data[pos : pos + 4], pos + 8, pos + 8 + struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        pos, i, tick, status, sounding = end, start, 0, 0, bytearray(16 * 128)
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
                    key, on = (status & 15) * 128 + data[i], status >= 0x90 and data[i + 1] > 0
                    anomalies += sounding[key] == on
                    sounding[key] = on
                elif 0xB0 <= status < 0xC0:
                    controllers[data[i]] = controllers.get(data[i], 0) + 1
                i += _DATA_LEN[status >> 4]
    anomalies += sum(n for n in controllers.values() if n < RARE_CONTROLLER)
    if not division:
        return last_note * tick_s, anomalies, tick_s
    seconds, at, tempo = 0.0, 0, 500000
    for t, new in sorted(tempos):
        if t >= last_note:
            break
        seconds += (t - at) * tempo / 1e6 / division
        at, tempo = t, new
    return seconds + (last_note - at) * tempo / 1e6 / division, anomalies, tempo / 1e6 / division


DURATION_TOLERANCE = 0.25  # s; MAESTRO's duration vs. last note time: -0.08..+0.04 s on intact files
RARE_CONTROLLER = 3  # a controller number used fewer times than this in a file is suspicious


def repair_bytes(data: bytes, expected_duration: float | None = None, name: str = "<bytes>") -> bytes:
    """Undo CR-LF -> LF damage: return ``data`` with its lost 0x0D bytes put back, or raise MidiError.

    An intact file is returned unchanged. Otherwise every well-formed restoration is found (see
    ``restorations``); a unique one is returned. Several are told apart only by
    ``expected_duration`` (seconds, e.g. MAESTRO's ``duration`` column): exactly one of them must
    end its last note within ``DURATION_TOLERANCE`` of it; if several do, exactly one of those
    must have the fewest anomalies (see ``_summary``: a misparse strikes sounding notes, releases
    silent ones, invents one-off controllers; the candidates differ only where they misparse). Otherwise the file cannot be repaired with certainty and
    MidiError says so.
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
    # Restorations differ in duration by their summed delta times: estimate each tick total's
    # duration from one reference restoration, then check the plausible ones exactly.
    totals = dag.tick_totals(finals)
    if any(t is None for t in totals):
        raise MidiError(f"{name}: cannot be repaired with certainty — {how} (too many to compare); re-download it")
    by_total: dict[int, int] = {}
    for t in totals:
        for k, c in t.items():
            by_total[k] = by_total.get(k, 0) + c
    ref = next(iter(by_total))
    ref_s, _, spt = _summary(_restored(data, dag.paths(finals, 1, ref)[0], name))
    near = [k for k in by_total if abs(ref_s + (k - ref) * spt - expected_duration) <= DURATION_TOLERANCE + 0.05]
    if sum(by_total[k] for k in near) > MAX_CANDIDATES:
        raise MidiError(f"{name}: cannot be repaired with certainty — {how} (too many to compare); re-download it")
    close = []
    for k in near:
        for ins in dag.paths(finals, MAX_CANDIDATES, k):
            b = _restored(data, ins, name)
            seconds, anomalies, _ = _summary(b)
            if abs(seconds - expected_duration) <= DURATION_TOLERANCE:
                close.append((anomalies, b))
    fewest = [b for a, b in close if a == min(a for a, _ in close)]
    if len(fewest) == 1:
        return fewest[0]
    raise MidiError(
        f"{name}: cannot be repaired with certainty — {how} and {len(fewest)} of them match the expected "
        f"duration {expected_duration:.2f} s equally well; re-download it"
    )


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
