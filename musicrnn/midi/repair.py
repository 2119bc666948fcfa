"""Repair of CR-LF -> LF damage in one Standard MIDI File: put lost 0x0D bytes back, or refuse.

309 of MAESTRO v2.0.0's files lost every 0x0D in front of a 0x0A (1-8 bytes of the piano track).
``search`` finds every well-formed restoration as a DAG. Usually there is one. When there are
several (a misaligned running-status stretch is valid MIDI), a Viterbi pass over the DAG
(``_viterbi``) scores each path by its musical anomalies -- what a misparse produces and a recorded
performance does not -- and the restoration is written only when exactly one path has the fewest
and its last note ends where MAESTRO's CSV says. On MAESTRO v2.0.0 all 309 damaged files are restored.
"""
from __future__ import annotations

from ..errors import MidiError
from .check import check_chunks
from .events import walk
from .search import Dag, Ins, Seg, insert_cr, search
from .timing import note_end_seconds

DURATION_TOLERANCE = 0.25  # s; MAESTRO's duration vs. last note time: -0.08..+0.04 s on intact files
RARE_EVENT_KIND = 3  # an event kind used fewer times than this in a file's certain part is suspicious


def _parse_events(b: bytes, status: int) -> tuple[list, int]:
    """Events of well-formed track bytes ``b`` as (kind, note key or -1, note sounds after it);
    also the running status after them.

    ``kind`` is what a misparse gets wrong and a performance repeats: the status byte (channel
    included), plus the number for a controller, or the type for a meta event.
    """
    out = []
    it = walk(b, 0, len(b), status)
    while True:
        try:
            _, kind, mtype, i, _ = next(it)
        except StopIteration as stop:
            return out, stop.value
        if kind == 0xFF:
            out.append(((0xFF, mtype), -1, False))
        elif kind == 0xF0:
            out.append(((0xF0,), -1, False))
        else:
            hi = kind >> 4
            if hi == 8 or hi == 9:
                out.append(((kind,), (kind & 15) * 128 + b[i], hi == 9 and b[i + 1] > 0))
            else:
                out.append(((kind, b[i]) if hi == 11 else (kind,), -1, False))


def _edge_events(data: bytes, ins: Ins, seg: Seg, cache: dict) -> list:
    """The events of one DAG edge (see ``Seg``); the skipped prefix is parsed once per node."""
    i0, i1, i2, status = seg
    head = cache.get((i0, i1, status))
    if head is None:
        head = cache[(i0, i1, status)] = _parse_events(data[i0:i1], status)
    tail, _ = _parse_events(insert_cr(data[i1:i2], tuple(x - i1 for x in ins)), head[1])
    return head[0] + tail


def _viterbi(data: bytes, dag: Dag, finals: list[int]) -> tuple[int, int, Ins]:
    """(fewest anomalies, number of restorations with that many, insertions of one of them).

    An anomaly is an event kind (see ``_parse_events``) used fewer than ``RARE_EVENT_KIND`` times
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
    usual = {kind for kind, n in kinds.items() if n >= RARE_EVENT_KIND}
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
    ins: Ins = ()
    while node:
        node, snd, edge_ins = best[node][snd][2]
        ins = edge_ins + ins
    return fewest, sum(n for c, n, _, _ in ends if c == fewest), ins




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
    dag, finals = search(data, name)
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


def _restored(data: bytes, ins: Ins, name: str) -> bytes:
    fixed = insert_cr(data, ins)
    check_chunks(fixed, name)  # the search and the checker agree; a bug if not
    return fixed
