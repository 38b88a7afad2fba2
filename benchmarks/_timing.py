"""Timing shared by the benchmark scripts (run them as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import random
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


def alternated_us(fns, calls: int = 300, rounds: int = 9, warmup: int = 20, seed: int = 0) -> list[list[float]]:
    """Microseconds per call of each of ``fns`` in every round: a block of ``calls`` calls of each
    in turn, in a fresh random order each round (seeded), ``rounds`` times. A small difference
    between two calls is lost in drift when each is timed in its own stretch of time, and a fixed
    order would give one of them the same place in every round's pattern of load."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    order = list(range(len(fns)))
    shuffle = random.Random(seed).shuffle
    blocks = [[] for _ in fns]
    for _ in range(rounds):
        shuffle(order)
        for i in order:
            blocks[i].append(_block_us(fns[i], calls))
    return blocks


def paired_us(fns, calls: int = 300, rounds: int = 9, warmup: int = 20) -> list[float]:
    """The median over :func:`alternated_us`'s rounds, for each of ``fns``."""
    return [statistics.median(times) for times in alternated_us(fns, calls, rounds, warmup)]


def paired_ratio(times, anchor) -> float:
    """The median over rounds of ``times[r] / anchor[r]``: each round's ratio is taken between
    calls made moments apart, so that the load of the machine, which drifts from round to
    round, cancels."""
    return statistics.median(t / a for t, a in zip(times, anchor))


def paired_difference(times, anchor) -> float:
    """The median over rounds of ``times[r] - anchor[r]``, as :func:`paired_ratio`."""
    return statistics.median(t - a for t, a in zip(times, anchor))


def paired_difference_quartiles(times, anchor) -> tuple[float, float]:
    """The first and third quartiles of the per-round differences ``times[r] - anchor[r]``: how far
    apart two calls made moments apart land, the resolution of :func:`paired_difference`."""
    diffs = [t - a for t, a in zip(times, anchor)]
    if len(diffs) < 2:  # one round: nothing to spread
        return diffs[0], diffs[0]
    q1, _, q3 = statistics.quantiles(diffs, n=4)
    return q1, q3
