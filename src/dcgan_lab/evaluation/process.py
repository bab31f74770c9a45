"""What a scoring stage sets in its process, and where: neither setting changes a number, both the time.

keep_freed_memory(), for the whole process: glibc's malloc serves every block above 32 MiB with a mapping of its
own and hands it back to the kernel when it is freed, so the next block of that size is fresh pages, each one a
page fault. torch-fidelity's precision/recall builds a 10,000 x 10,000 distance matrix (400 MB), and copies it
for kthvalue, several times per generator and feature space: an evaluate stage spent 87 s of its 99 s of wall
time in the kernel (benchmarks/RESULTS.md, "One-off runs"). mallopt asks glibc to serve large blocks from its
heap and not to trim the heap, so freed blocks are reused; the process keeps its peak resident memory until it
exits. Elsewhere than glibc it does nothing.

one_blas_thread(), around our own NumPy work on torch-fidelity's features (per_class.py, fid_infinity.py): torch's
OpenMP threads keep spinning for a while after each of its parallel regions, and a second BLAS thread then fights
them for the cores instead of sharing the work. On two cores a class's 500 x 64 covariance took 8 ms instead of
0.2 ms, and the per-class FIDs and FID∞ of 5,000 samples 155 ms instead of 18 ms. Not around torch-fidelity's own
calls: its KID is a float32 product, which one thread rounds differently (by 1e-8).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from contextlib import contextmanager
from typing import Iterator

from threadpoolctl import threadpool_limits

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


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Every BLAS library in the process (NumPy's OpenBLAS, SciPy's; torch's OpenMP pool is not one) on one thread
    inside the block, as before after it."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield
