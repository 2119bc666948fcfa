"""The search behind the repair of CR-LF -> LF damage: every way to put lost 0x0D bytes back.

309 of MAESTRO v2.0.0's files lost every 0x0D in front of a 0x0A (1-8 bytes of the piano track).
A parser-guided search (``_search``) finds every set of 0x0A bytes in front of which a 0x0D makes
each track parse and end exactly at its declared length, as a DAG of parser states whose root-to-end
paths are the well-formed restorations. Usually there is one. When there are several (a misaligned
running-status stretch is valid MIDI), a Viterbi pass over the DAG (``_viterbi``) scores each path by
its musical anomalies -- what a misparse produces and a recorded performance does not -- and the
restoration is written only when exactly one path has the fewest and its last note ends where
MAESTRO's CSV says. Nothing is enumerated, so a file with millions of restorations costs what one
with two does. On MAESTRO v2.0.0 all 309 damaged files are restored.

``repair`` picks one of the restorations (``Dag``) this module finds, or refuses.
"""
from __future__ import annotations

import heapq
import struct

from .events import DATA_LEN, header, skip_channel_events

# ---------------------------------------------------------------------------------------------
# Repair of CR-LF -> LF damage: put a 0x0D back in front of some 0x0A bytes.
#
# The search reads a *virtual* restored stream from the damaged bytes. At damaged offset i the
# next restored byte is data[i], except when data[i] == 0x0A: then it may also be an inserted
# 0x0D, after which data[i] follows ("pending"). Parsing this stream event by event, the state at
# an event boundary is (i, pending, insertions so far, running status); states are expanded in
# order of i and merged, so the search is a dynamic programme over byte offsets, not a
# combinatorial one. Stretches without 0x0A are skipped with events.skip_channel_events (regex).
# ---------------------------------------------------------------------------------------------

MAX_CANDIDATES = 64  # default number of restorations ``restorations`` lists
_PAYLOAD_CAP = 64  # ways of reading one meta/sysex payload that are kept (more: ambiguous anyway)

Ins = tuple  # offsets in the damaged data before which a 0x0D is inserted


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
            if b < 0xF0:  # channel event (b < 0x80: running status, b is its first data byte)
                s = b if b >= 0x80 else status
                if not s:
                    continue
                n = DATA_LEN[s >> 4] - (b < 0x80)
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
Seg = tuple  # (i_from, i_skip, i_to, status) or None for a step between chunks


class Dag:
    """Search states as a DAG: each node keeps its incoming edges (source, insertions, segment).

    ``count`` is the (capped) number of root-to-node paths, final when the node is expanded;
    ``paths`` lists the insertion sets of some paths.
    """

    def __init__(self) -> None:
        self.edges: list[list[tuple[int, Ins, Seg]]] = [[]]  # node 0 is the root
        self.count: list[int] = [1]

    def node(self) -> int:
        self.edges.append([])
        self.count.append(0)
        return len(self.count) - 1

    def link(self, src: int, dst: int, ins: Ins, seg: Seg = None) -> None:
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

    def paths(self, targets: list[int], limit: int) -> list[Ins]:
        """Up to ``limit`` insertion tuples of root-to-target paths."""
        memo: dict[int, list[Ins]] = {0: [()]}
        for node in self.order(targets):
            edges = self.edges[node]
            if len(edges) == 1 and not edges[0][1]:
                memo[node] = memo[edges[0][0]]  # a plain chain: share the list, copy nothing
                continue
            out: list[Ins] = []
            for src, ins, _ in edges:
                out.extend(p + ins for p in memo[src][: limit - len(out)])
            memo[node] = out
        return [p for t in targets for p in memo[t]][:limit]


def _track_alts(data: bytes, start: int, length: int, dag: Dag, root: int, max_ins: int) -> dict[int, int]:
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


def restorations(data: bytes, name: str = "<bytes>", limit: int = MAX_CANDIDATES) -> tuple[int, list[Ins]]:
    """Count the sets of 0x0D insertion offsets that make ``data`` well-formed; list up to ``limit``."""
    dag, finals = search(data, name)
    return sum(dag.count[n] for n in finals), dag.paths(finals, limit)


def search(data: bytes, name: str) -> tuple[Dag, list[int]]:
    """The DAG of all restorations and its final nodes.

    Each track must parse and end exactly at its declared length. Restorations that leave no
    bytes after the last track are preferred (the conversion only ever removed bytes).
    """
    ntracks, pos = header(data, name)
    dag = Dag()
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


def insert_cr(data: bytes, ins: Ins) -> bytes:
    """``data`` with a 0x0D inserted before each offset in ``ins``."""
    out, prev = bytearray(), 0
    for i in sorted(ins):
        out += data[prev:i]
        out.append(13)
        prev = i
    out += data[prev:]
    return bytes(out)
