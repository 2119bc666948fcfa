"""Fast note reading: the events of a track found with numpy, and pretty_midi's note pairing, exactly.

``instruments(data)`` returns what ``pretty_midi.PrettyMIDI(data)`` would give the note cache: the
non-drum instruments, in pretty_midi's order, each as (pitch, start, end, velocity, cc64_time,
cc64_value) arrays with the notes in pretty_midi's append order and its tick->seconds arithmetic, so
``Notes`` built from it are bit-identical. Where this module cannot be sure of that (sysex, odd meta
events, several programs on one channel, SMPTE time, ...) it returns a one-line reason instead and the
caller parses the file with pretty_midi. ``data`` must have passed ``check.check_chunks``: this module
trusts that every track parses and ends with end-of-track at its declared end.

The bytes are read through ``events``: its header and chunk readers, its data-byte counts
(``DATA_LEN``, from which the step table below is built) and its variable-length reader for the few
meta events. Only the search for event starts (and the running-status resolution) is vectorised
here: a Python step per event, as in ``events.walk``, is what makes a 5,000-note performance slow to
read, and the note cache reads every file of the dataset.

How the walker works without a Python loop per event: for every byte position i it computes f(i), where
the next event would start if an event started at i (a running-status event is assumed to carry 2 data
bytes). The true events are the orbit 0, f(0), f(f(0)), ..., found by pointer doubling in O(n log n)
numpy work. The orbit is exact up to the first running-status event whose status has 1 data byte;
``track_events`` checks for that and gives up (a reason) if it happens.
"""
from __future__ import annotations

import numpy as np

from .events import DATA_LEN, chunks, division, header, varlen

MAX_TICK = 1e7  # pretty_midi refuses files with a larger tick (ValueError)
# bytes an event takes after its status position, by status byte (0x00-0x7F: running status, 2 data bytes)
_STEP = np.full(256, 1 << 30, np.int64)
_STEP[:0x80] = 2
_TWO_BYTE = np.zeros(16, bool)  # by status >> 4: channel events with 2 data bytes
for _hi, _n in DATA_LEN.items():
    _STEP[_hi << 4 : (_hi + 1) << 4] = 1 + _n
    _TWO_BYTE[_hi] = _n == 2
# meta types whose decoding in mido and use in pretty_midi cannot fail (0x51/0x58 are checked below)
_SAFE_META = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x2F, 0x51, 0x58}


def _varlen_at(b: np.ndarray, q: np.ndarray, nl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and byte lengths of the variable-length numbers starting at positions ``q``."""
    ln = nl[q] - q + 1
    v = b[q].astype(np.int64) & 0x7F
    for k in range(1, 4):
        m = ln > k
        if not m.any():
            break
        v = np.where(m, (v << 7) | (b[np.minimum(q + k, len(b) - 1)] & 0x7F), v)
    return v, ln


def track_events(data: bytes, start: int, end: int):
    """The events of one checked track ``data[start:end]`` as arrays, or a reason string.

    Returns (tick, status, d0, d1, pos): absolute tick; status byte (running status resolved; 0xFF for
    meta events); the first two data bytes (meta: type and first length byte); the position in ``data``
    of d0. A reason string where running status follows a 1-data-byte status, or on a sysex event.
    """
    n = end - start
    b = np.zeros(n + 8, np.int64)  # zero padding: low bytes, so every varlen ends inside
    b[:n] = np.frombuffer(data, np.uint8, n, start)
    idx = np.arange(n + 8)
    nl = np.where(b < 0x80, idx, n + 8)
    nl = np.minimum.accumulate(nl[::-1])[::-1]  # first low byte at or after each position
    s = nl[:n] + 1  # status position of an event starting at i
    c = b[s]
    f = s + _STEP[c]
    m = np.flatnonzero(c >= 0xF0)
    if len(m):
        cm = c[m]
        q = s[m] + np.where(cm == 0xFF, 2, 1)
        v, ln = _varlen_at(b, q, nl)
        f[m] = np.where((cm == 0xFF) | (cm == 0xF0) | (cm == 0xF7), q + ln + v, f[m])
    f = np.append(np.minimum(f, n), n).astype(np.int32)
    # orbit of 0 by pointer doubling: levels[k] = f^(2^k); at most n // 2 events (2 bytes each)
    levels = [f]
    while (1 << len(levels)) <= n // 2 + 1:
        levels.append(levels[-1][levels[-1]])
    p = np.zeros(1, np.int32)
    for lv in reversed(levels):
        p = np.stack([p, lv[p]], 1).ravel()
    p = p[p < n].astype(np.int64)
    delta, dln = _varlen_at(b, p, nl)
    s = p + dln
    c = b[s]
    if ((c == 0xF0) | (c == 0xF7)).any():
        return "sysex event"
    explicit = (c >= 0x80) & (c < 0xF0)
    last = np.maximum.accumulate(np.where(explicit, np.arange(len(c)), -1))
    running = c < 0x80
    if (running & (last < 0)).any():
        return "running status without a status"
    status = np.where(running, c[np.maximum(last, 0)], c)
    if not _TWO_BYTE[status[running] >> 4].all():
        return "running status of a 1-data-byte event"
    d = s + (c >= 0x80)  # first data byte (meta: the type byte)
    return np.cumsum(delta), status, b[d], b[d + 1], d + start  # last: positions in data


def _meta_ok(data: bytes, ev) -> str | None:
    _, status, d0, _, d = ev
    meta = np.flatnonzero(status == 0xFF)
    for i in meta.tolist():
        t = int(d0[i])
        if t not in _SAFE_META:
            return f"meta event 0x{t:02X}"
        ln, pos = varlen(data, int(d[i]) + 1, len(data))  # well-formed (checked file)
        if t == 0x51 and (ln != 3 or int.from_bytes(data[pos : pos + 3], "big") == 0):
            return "odd set-tempo event"
        if t == 0x58 and (ln != 4 or data[pos] == 0):
            return "odd time-signature event"
    return None


def _tempo_map(data: bytes, ev, resolution: int):
    """pretty_midi's ``_tick_scales`` and the seconds at each scale's first tick, exactly."""
    ticks, status, d0, _, d = ev
    scales = [(0, 60.0 / (120.0 * resolution))]
    for i in np.flatnonzero((status == 0xFF) & (d0 == 0x51)).tolist():
        pos = int(d[i]) + 2  # type byte, 1-byte length (checked: 3)
        tempo = int.from_bytes(data[pos : pos + 3], "big")
        if ticks[i] == 0:
            scales = [(0, 60.0 / ((6e7 / tempo) * resolution))]
        else:
            scale = 60.0 / ((6e7 / tempo) * resolution)
            if scale != scales[-1][1]:
                scales.append((int(ticks[i]), scale))
    starts = np.array([t for t, _ in scales], np.int64)
    rates = np.array([r for _, r in scales])
    offsets = np.zeros(len(scales))  # pretty_midi's last_end_time of each scale, same float ops
    for k in range(len(scales) - 1):
        offsets[k + 1] = offsets[k] + rates[k] * float(starts[k + 1] - starts[k])
    return starts, rates, offsets


def _seconds(tick: np.ndarray, starts, rates, offsets) -> np.ndarray:
    seg = np.searchsorted(starts, tick, side="right") - 1
    return offsets[seg] + rates[seg] * (tick - starts[seg])


def _pairs(key, tick, on):
    """pretty_midi's note pairing within one track: (on event index, off event index) per note, in
    the order pretty_midi appends the notes (by off event, then by on event)."""
    order = np.argsort(key, kind="stable")
    k, t, o = key[order], tick[order], on[order]
    same = np.zeros(len(k), bool)
    same[1:] = k[1:] == k[:-1]
    prev_on = np.zeros(len(k), bool)
    prev_on[1:] = same[1:] & o[:-1]
    odd = prev_on & (o | np.append(False, t[1:] == t[:-1]))  # on after on, or off at the on's tick
    bad_keys = np.unique(k[odd])
    regular = ~np.isin(k, bad_keys)
    close = np.flatnonzero(prev_on & ~o & regular)
    ons, offs = [order[close - 1]], [order[close]]
    for kk in bad_keys.tolist():  # the exact rule, event by event, for the few irregular keys
        open_ = []
        for j in order[k == kk].tolist():
            if on[j]:
                open_.append(j)
            elif open_:
                shut = [i for i in open_ if tick[i] != tick[j]]
                keep = [i for i in open_ if tick[i] == tick[j]]
                ons.append(np.array(shut, np.int64))
                offs.append(np.full(len(shut), j, np.int64))
                open_ = keep if shut and keep else []
    a, b = np.concatenate(ons), np.concatenate(offs)
    o2 = np.lexsort((a, b))
    return a[o2], b[o2]


def instruments(data: bytes):
    """The file's non-drum instruments as pretty_midi reads them (see the module doc), or a reason."""
    ntracks, pos = header(data, "<bytes>")
    ticks_per_beat = division(data)
    if ticks_per_beat & 0x8000 or ntracks >= 0x8000:
        return "SMPTE time division"
    tracks = []
    for cid, start, end in chunks(data, pos):
        if len(tracks) == ntracks:
            break
        if cid != b"MTrk":
            return "a chunk that is not a track"
        ev = track_events(data, start, end)
        if isinstance(ev, str):
            return ev
        why = _meta_ok(data, ev)
        if why:
            return why
        tracks.append(ev)
    if len(tracks) < ntracks:
        return "fewer tracks than the header says"
    if max(int(ev[0][-1]) for ev in tracks) + 1 > MAX_TICK:
        return "tick beyond pretty_midi's limit"
    tempo = _tempo_map(data, tracks[0], ticks_per_beat)
    insts = []  # (track, first off event, arrays)
    for ti, (ticks, status, d0, d1, _) in enumerate(tracks):
        hi, ch = status >> 4, status & 15
        note = np.flatnonzero((hi == 8) | (hi == 9))
        if not len(note):
            continue
        on = (hi[note] == 9) & (d1[note] > 0)
        a, z = _pairs(ch[note] * 128 + d0[note], ticks[note], on)
        ja, jz = note[a], note[z]  # event indices of each note's on and off
        pc = np.flatnonzero(hi == 12)
        cc = np.flatnonzero((hi == 11) & (d0 == 64))
        for c in np.unique(ch[jz]).tolist():
            sel = ch[jz] == c
            first = int(jz[sel][0])
            cci = cc[ch[cc] == c]
            if len(pc):
                pcc = pc[ch[pc] == c]
                if len(pcc):
                    progs = np.append(0, d0[pcc])
                    if len(np.unique(progs[np.searchsorted(pcc, jz[sel])])) > 1:
                        return "several programs on one channel"
                    p = progs[np.searchsorted(pcc, first)]
                    late = cci[cci > first]
                    if (progs[np.searchsorted(pcc, late)] != p).any():
                        return "pedal events under another program"
            if c == 9:
                continue  # drums: pretty_midi's is_drum, which the note cache skips
            tj = ticks[cci]
            insts.append((ti, first, (d0[ja[sel]], _seconds(ticks[ja[sel]], *tempo),
                                      _seconds(ticks[jz[sel]], *tempo), d1[ja[sel]],
                                      _seconds(tj, *tempo), d1[cci])))
    insts.sort(key=lambda x: x[:2])
    return [x[2] for x in insts]
