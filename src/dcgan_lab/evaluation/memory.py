"""Keep freed memory in the process while scoring: glibc's malloc serves every block above 32 MiB with a
mapping of its own and hands it back to the kernel when it is freed, so the next block of that size is fresh
pages, each one a page fault. torch-fidelity's precision/recall builds a 10,000 x 10,000 distance matrix
(400 MB), and copies it for kthvalue, several times per generator and feature space: an evaluate stage spent
more time in the kernel than in its own computation (benchmarks/RESULTS.md, "What an evaluate stage spends").

keep_freed_memory() asks glibc (mallopt) to serve large blocks from its heap and not to trim the heap, so freed
blocks are reused. The numbers do not change (the same computation in reused memory); the process keeps its peak
resident memory until it exits. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's malloc.h
NEVER_TRIM = 2**31 - 1  # mallopt takes an int: the heap is trimmed only above 2 GiB free at its top


def keep_freed_memory() -> bool:
    """Large blocks from malloc's heap, which is not trimmed (mallopt M_MMAP_MAX 0, M_TRIM_THRESHOLD 2 GiB); True
    if glibc took both settings, False where there is no glibc (nothing changes then)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # no libc, or a libc without mallopt (musl)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
