"""Time-ordered train / validation / test splits and walk-forward folds.

Nothing here shuffles across time unless asked: the past trains, the future tests.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import pandas as pd

from lstmkit._validation import check_choice, check_int
from lstmkit.data._checks import check_bool, is_integer

__all__ = ["Fold", "time_split", "walk_forward"]


def _length(owner: str, name: str, data) -> int:
    if isinstance(data, (pd.Series, pd.DataFrame, np.ndarray)):
        if data.ndim == 0:
            raise ValueError(f"{owner}: `{name}` is a scalar; pass an array with a time axis.")
        return data.shape[0]
    try:
        return len(data)
    except TypeError:
        raise TypeError(f"{owner}: `{name}` must be an array, Series, DataFrame or list, got "
                        f"{type(data).__name__}.") from None


def _take(data, rows: np.ndarray):
    if isinstance(data, (pd.Series, pd.DataFrame)):
        return data.iloc[rows]
    if isinstance(data, np.ndarray):
        return data[rows]
    return [data[i] for i in rows.tolist()]


def _counts(owner: str, sizes, n: int) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"{owner}: `sizes` must be a list of fractions or row counts, e.g. (0.8, 0.2), "
                        f"got {sizes!r}.")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"{owner}: `sizes` needs at least two parts, got {sizes!r}; e.g. (0.8, 0.2).")
    if all(is_integer(s) for s in sizes):
        if any(s < 1 for s in sizes) or sum(sizes) != n:
            raise ValueError(f"{owner}: row counts in `sizes` must be >= 1 and add up to the {n} rows of "
                             f"the data, got {sizes!r} (sum {sum(sizes)}).")
        return [int(s) for s in sizes]
    if any(is_integer(s) for s in sizes) or not all(
            isinstance(s, numbers.Real) and not isinstance(s, bool) for s in sizes):
        raise TypeError(f"{owner}: `sizes` must be all fractions or all integer row counts, got {sizes!r}.")
    if any(not 0 < s < 1 for s in sizes) or not math.isclose(sum(sizes), 1.0, abs_tol=1e-9):
        raise ValueError(f"{owner}: fractions in `sizes` must each be in (0, 1) and add up to 1, got "
                         f"{sizes!r} (sum {sum(sizes)!r}).")
    bounds = [0] + [round(f * n) for f in np.cumsum(sizes)[:-1]] + [n]
    counts = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    if min(counts) < 1:
        raise ValueError(f"{owner}: `sizes` {sizes!r} leaves part {counts.index(min(counts))} empty for "
                         f"data of {n} rows (counts {counts}); use larger fractions or more data.")
    return counts


def time_split(*arrays, sizes=(0.8, 0.2), overlap: int = 0, shuffle: bool = False, seed=None):
    """Split one or more aligned arrays into consecutive parts along time (axis 0).

    Args:
        *arrays: arrays, Series, DataFrames or lists of the same length, time first (e.g. a
            series, or windows ``X`` and targets ``y``).
        sizes: one entry per part: fractions that add up to 1 (rounded to whole rows), or row
            counts that add up to the length.
        overlap: every part after the first also gets the ``overlap`` rows just before it, so
            windowing it with ``lookback=overlap`` gives targets that start right at the split.
            Only inputs overlap, never targets.
        shuffle: shuffle rows before splitting. Off by default; on, the parts are no longer
            time-ordered, so use it only for data without temporal order (already-cut windows).
        seed: seed for ``shuffle``.

    Returns:
        a list with one part per entry of ``sizes``; with several arrays, each part is a tuple of
        their slices. pandas objects keep their index.

    Shape:
        - arrays[k]: ``(T, ...)``
        - part j: ``(sizes[j] (+ overlap), ...)``

    >>> train, test = time_split(np.arange(10), sizes=(0.8, 0.2))
    >>> train.tolist(), test.tolist()
    ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    >>> [p.tolist() for p in time_split(np.arange(10), sizes=(6, 2, 2), overlap=1)]
    [[0, 1, 2, 3, 4, 5], [5, 6, 7], [7, 8, 9]]
    """
    owner = "time_split"
    if not arrays:
        raise ValueError(f"{owner}: pass at least one array to split.")
    n = _length(owner, "arrays[0]", arrays[0])
    if n == 0:
        raise ValueError(f"{owner}: `arrays[0]` is empty; there is nothing to split.")
    for k, data in enumerate(arrays[1:], start=1):
        if _length(owner, f"arrays[{k}]", data) != n:
            raise ValueError(f"{owner}: `arrays[{k}]` has {_length(owner, '', data)} rows but `arrays[0]` "
                             f"has {n}; the arrays must be aligned along time.")
    counts = _counts(owner, sizes, n)
    overlap = check_int(owner, "overlap", overlap, minimum=0)
    if overlap and overlap >= counts[0]:
        raise ValueError(f"{owner}: `overlap`={overlap} must be smaller than the first part's {counts[0]} "
                         f"rows.")
    order = np.arange(n)
    if check_bool(owner, "shuffle", shuffle):
        if overlap:
            raise ValueError(f"{owner}: `overlap` needs time order; it cannot be combined with shuffle=True.")
        order = np.random.default_rng(seed).permutation(n)
    parts = []
    start = 0
    for count in counts:
        rows = order[max(0, start - overlap) if start else 0:start + count]
        taken = tuple(_take(data, rows) for data in arrays)
        parts.append(taken[0] if len(arrays) == 1 else taken)
        start += count
    return parts


class Fold(NamedTuple):
    """One walk-forward fold: integer positions of the ``train`` rows and the ``test`` rows."""

    train: np.ndarray
    test: np.ndarray


def walk_forward(data, initial: int, test_size: int = 1, step: int | None = None,
                 window: str = "expanding") -> list[Fold]:
    """Walk-forward validation folds: train on the past, test on the next ``test_size`` steps.

    The first fold trains on rows ``[0, initial)``; each next fold moves the forecast origin on by
    ``step``. With ``window="expanding"`` the training rows always start at 0; with
    ``"sliding"`` they are the last ``initial`` rows before the origin. Folds stop when a full
    test block no longer fits. The folds work as a scikit-learn ``cv`` iterable.

    Args:
        data: the series (anything with a length) or its length as an int.
        initial: training rows in the first fold (and in every fold when sliding).
        test_size: test rows per fold (the forecast horizon).
        step: how far the origin moves between folds; defaults to ``test_size``.
        window: ``"expanding"`` or ``"sliding"``.

    Returns:
        a list of :class:`Fold` ``(train, test)`` of int64 row positions.

    Shape:
        - train: ``(initial + j * step,)`` expanding or ``(initial,)`` sliding; test: ``(test_size,)``

    >>> [(f.train.tolist(), f.test.tolist()) for f in walk_forward(6, initial=3, test_size=1)]
    [([0, 1, 2], [3]), ([0, 1, 2, 3], [4]), ([0, 1, 2, 3, 4], [5])]
    >>> [(f.train.tolist(), f.test.tolist()) for f in walk_forward(6, 2, 2, window="sliding")]
    [([0, 1], [2, 3]), ([2, 3], [4, 5])]
    """
    owner = "walk_forward"
    n = int(data) if is_integer(data) else _length(owner, "data", data)
    if n < 1:
        raise ValueError(f"{owner}: `data` is empty; there is nothing to fold.")
    initial = check_int(owner, "initial", initial, minimum=1)
    test_size = check_int(owner, "test_size", test_size, minimum=1)
    step = check_int(owner, "step", test_size if step is None else step, minimum=1)
    check_choice(owner, "window", window, ("expanding", "sliding"))
    if n < initial + test_size:
        raise ValueError(f"{owner}: `data` has {n} rows, fewer than `initial` + `test_size` = {initial} + "
                         f"{test_size} = {initial + test_size}; there is no complete fold.")
    folds = []
    for origin in range(initial, n - test_size + 1, step):
        first = 0 if window == "expanding" else origin - initial
        folds.append(Fold(np.arange(first, origin, dtype=np.int64),
                          np.arange(origin, origin + test_size, dtype=np.int64)))
    return folds
