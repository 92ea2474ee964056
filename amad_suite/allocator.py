"""CPU allocator setting for training and benchmarks: keep freed memory instead of returning it to the OS.

glibc serves blocks above its mmap threshold (a few MiB, adapted at run time) with fresh ``mmap`` pages and trims
freed heap memory back to the OS. A CPU training step allocates and frees the same multi-MiB activations and
attention maps every step, so each step pays page faults to re-zero them (measured here: the AMAD loss on
BLIP's (32, 8, 65, 65) vision maps ran its forward in 1.96 ms with the defaults, 1.01 ms with this setting).
Raising both thresholds makes glibc behave like a caching allocator. Set ``AMAD_SYSTEM_MALLOC=1`` to opt out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_BYTES = 1 << 30

_state = {"kept": False}


def keep_freed_memory() -> bool:
    """Ask glibc to keep up to 1 GiB of freed memory and to serve blocks below 1 GiB from the heap.

    Returns True when the setting took effect; False on a non-glibc system or with ``AMAD_SYSTEM_MALLOC=1``.
    """
    if os.environ.get("AMAD_SYSTEM_MALLOC", "") not in ("", "0"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        kept = bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)) and bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP_BYTES))
    except (OSError, AttributeError):
        return False
    _state["kept"] = _state["kept"] or kept
    return kept


def describe() -> str:
    """What run_info.json records: ``glibc-keep-freed`` or ``system``."""
    return "glibc-keep-freed" if _state["kept"] else "system"
