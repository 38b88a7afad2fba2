"""Freed memory kept for reuse: on the CPU, what CUDA's caching allocator does on the GPU.

A train step allocates its activations, workspaces and gradients afresh and frees them when the
step ends. torch's CPU tensors come from the C library's ``malloc``; glibc's serves a request
above its mmap threshold (128 KB, adapting up to 32 MB) with fresh pages from the kernel and
hands them back on ``free``. Every page of every large tensor then costs a page fault when it is
first written, in every step: at (128, 50, 128, 512), ~48,000 faults and ~0.14 s of system time
per train step of ``torch.nn.LSTM`` on this machine, 27,000-39,000 for lstmkit's fused LSTM
(docs/performance.md).

:func:`retain_freed_memory` raises glibc's thresholds so that freed memory stays in the process
and the next step's tensors reuse it: no faults after the first few steps. The price is that the
process keeps its peak memory instead of returning what it frees, which the CUDA caching
allocator also does. It is a setting of the whole process (it reaches every library in it), so
lstmkit never makes it on its own: call it at the start of a training script.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt's parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LARGEST = 2**31 - 1  # an int: requests above 2 GB still get pages of their own
# Older glibc refuses an mmap threshold above HEAP_MAX_SIZE / 2, 32 MB on 64-bit systems
# (glibc 2.36 here accepts the largest): there, tensors above 32 MB keep pages of their own.
_OLDER_GLIBC_LIMIT = 32 << 20

_retaining = False
_threshold = None  # the mmap threshold set, in bytes


def retain_freed_memory() -> bool:
    """Keep the memory that freed tensors leave for the next allocations instead of returning it
    to the operating system, for the rest of the process: large training steps on the CPU no
    longer page-fault on every new tensor (measured at (128, 50, 128, 512): a train step of
    ``torch.nn.LSTM`` or ``engine="auto"`` 0.80x of its time, lstmkit's fused LSTM paths
    0.76x-0.85x; the GRU and the Elman RNN, which allocate less, about unchanged;
    docs/performance.md).

    Returns True where it applied (Linux with glibc), False elsewhere, where nothing changes.
    Calling it again does nothing more. The process then holds on to its peak memory. Older
    glibc caps the threshold at 32 MB: tensors above that are still faulted in afresh there.

    >>> import lstmkit
    >>> lstmkit.retain_freed_memory() in (True, False)
    True
    """
    global _retaining, _threshold
    if _retaining:
        return True
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)  # the process's own symbols: the C library torch allocates from
    if not hasattr(libc, "gnu_get_libc_version"):
        return False  # not glibc (musl's mallopt does nothing)
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # Every allocation up to 2 GB (or the older limit) from the heap, and nothing freed at its
    # top handed back.
    for threshold in (_LARGEST, _OLDER_GLIBC_LIMIT):
        if mallopt(_M_MMAP_THRESHOLD, threshold):
            _threshold = threshold
            break
    _retaining = _threshold is not None and bool(mallopt(_M_TRIM_THRESHOLD, _LARGEST))
    return _retaining


def retaining_freed_memory() -> bool:
    """Whether :func:`retain_freed_memory` has applied in this process."""
    return _retaining
