"""The machine's available memory, and the one-line refusal of a job that would not fit in it.

Why: an allocation that cannot succeed (``--num-notes 10**9``, ``--num-samples 10**9``) ends in a
numpy ``_ArrayMemoryError`` or torch ``DefaultCPUAllocator`` traceback, or in the OOM killer after
swapping. Jobs whose size is known up front estimate their bytes and call ``check_fits`` before
allocating anything, so the user sees the estimate, what the machine has and the fix.
"""
from __future__ import annotations

import os

from .errors import ConfigError

CGROUP_LIMIT = "/sys/fs/cgroup/memory.max"  # cgroup v2: a container's own limit
CGROUP_USED = "/sys/fs/cgroup/memory.current"


def size_text(n: float) -> str:
    """Bytes as a short human figure with 3 significant digits: 512 B, 149 KB, 1.23 MB, 64.0 GB."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            v = n / scale
            return f"{v:.{2 if v < 10 else 1 if v < 100 else 0}f} {unit}"
    return f"{int(n)} B"


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" = no limit


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_bytes() -> int | None:
    """Memory a new allocation can get without swapping: Linux's MemAvailable, less when this process's
    cgroup has a lower limit; the free physical pages elsewhere; None when unknown."""
    avail = _meminfo_available()
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    limit, used = _read_int(CGROUP_LIMIT), _read_int(CGROUP_USED)
    if limit is not None and used is not None:
        avail = min(avail, max(limit - used, 0))
    return avail


def check_fits(need: int, what: str, fix: str) -> None:
    """ConfigError when ``need`` bytes (an estimate for ``what``) exceed the available memory."""
    avail = available_bytes()
    if avail is not None and need > avail:
        raise ConfigError(f"{what} needs about {size_text(need)} of memory but this machine has "
                          f"{size_text(avail)} available — {fix}")
