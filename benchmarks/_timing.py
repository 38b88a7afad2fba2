"""Timing shared by the benchmark scripts (run them as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import statistics
import time


def median_time(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls, after one warm-up call
    (allocations, oneDNN primitive creation, numba compilation)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_call_us(fn, calls: int = 2000, rounds: int = 5, warmup: int = 200) -> float:
    """Microseconds per call of a fast ``fn``: the median over ``rounds`` of ``calls`` calls each."""
    for _ in range(warmup):
        fn()
    return statistics.median(_block_us(fn, calls) for _ in range(rounds))


def _block_us(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def paired_us(fns, calls: int = 300, rounds: int = 9, warmup: int = 20) -> list[float]:
    """Microseconds per call of each of ``fns``, measured in alternating blocks (a block of each
    in turn, ``rounds`` times; the median per function). A small difference between two calls
    of a few milliseconds is lost in drift when each is timed in its own stretch of time."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    blocks = [[] for _ in fns]
    for _ in range(rounds):
        for times, fn in zip(blocks, fns):
            times.append(_block_us(fn, calls))
    return [statistics.median(times) for times in blocks]
