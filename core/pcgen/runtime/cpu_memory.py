"""Keep freed CPU memory in the process instead of handing it back to the operating system.

glibc's ``malloc`` serves blocks above a threshold (at most 32 MiB by default) with fresh ``mmap``
pages and returns them with ``munmap`` when freed, and it trims its heap when the top is free. A
training step allocates and frees the same large tensors every time (OmniJet's GPT: 90 MB of
logits and their gradient), so each step faulted in and zeroed hundreds of MB of new pages again:
about 90,000 page faults and 15 % of a GPT step on this CPU. :func:`keep_freed_memory` raises
both thresholds (``mallopt``), so freed memory is reused; the process then keeps its peak memory.
It is process-wide, done once, and does nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters
_LARGEST = 2**31 - 1  # mallopt takes an int


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc reuse freed memory for large blocks (see the module); True if it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, _LARGEST), (_M_TRIM_THRESHOLD, _LARGEST), (_M_TOP_PAD, 64 << 20)))


__all__ = ["keep_freed_memory"]
