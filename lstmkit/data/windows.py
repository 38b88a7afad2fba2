"""Shape sequence data as ``[samples, timesteps, features]`` and frame it as supervised windows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmkit._validation import check_int
from lstmkit.data._checks import check_array, check_bool, is_integer

__all__ = ["Supervised", "to_3d", "to_supervised"]


def _divisors(n: int, limit: int = 8) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0][:limit]


def to_3d(data, timesteps: int, features: int | None = None) -> np.ndarray:
    """Reshape 1-D, 2-D or 3-D data into ``(samples, timesteps, features)``.

    Values are taken in row-major order, so a 2-D ``(time, features)`` array is cut into
    consecutive, non-overlapping blocks of ``timesteps`` rows. This is a reshape, not a sliding
    window: for overlapping windows with targets use :func:`to_supervised`.

    Args:
        data: array-like of numbers (NumPy, pandas, nested lists).
        timesteps: length of each sample.
        features: size of the last axis of the result; defaults to 1 for 1-D input and to the
            size of the input's last axis otherwise. Pass it to unflatten a 2-D
            ``(samples, timesteps * features)`` lag matrix.

    Shape:
        - data: ``(n,)``, ``(n, F)`` or ``(S, T, F)``
        - output: ``(size // (timesteps * features), timesteps, features)``

    >>> to_3d(np.arange(6), timesteps=3).tolist()
    [[[0], [1], [2]], [[3], [4], [5]]]
    >>> to_3d(np.arange(12).reshape(6, 2), timesteps=3).shape
    (2, 3, 2)
    """
    owner = "to_3d"
    array, _ = check_array(owner, "data", data, ndims=(1, 2, 3), to_float=False, allow_nan=True)
    timesteps = check_int(owner, "timesteps", timesteps, minimum=1)
    default_features = 1 if array.ndim == 1 else array.shape[-1]
    features = check_int(owner, "features", features, minimum=1, allow_none=True) or default_features
    per_sample = timesteps * features
    if array.size % per_sample:
        hint = ""
        if array.size % features == 0:
            rows = array.size // features
            divisors = ", ".join(str(d) for d in _divisors(rows))
            keep = rows - rows % timesteps
            hint = (f" Values of `timesteps` that divide its {rows} rows of {features} feature(s): "
                    f"{divisors}{', ...' if len(_divisors(rows, limit=rows)) > 8 else ''}")
            if keep:
                hint += f"; or keep the last {keep} rows (data[-{keep}:])."
            else:
                hint += "."
        raise ValueError(
            f"{owner}: `data` of shape {array.shape} has {array.size} values, which do not divide "
            f"into samples of `timesteps` x `features` = {timesteps} x {features} = {per_sample}."
            f"{hint}")
    return np.array(array.reshape(-1, timesteps, features))


class Supervised(tuple):
    """Windows cut from a series by :func:`to_supervised`; unpacks as ``X, y``.

    Attributes:
        X: inputs, ``(N, lookback, F_in)``.
        y: targets, ``(N, horizon)`` for one target column, ``(N, horizon, F_target)`` for several.
        index: ``pandas.Index`` of length ``N``: the time label of each window's first target step
            (for NumPy input, its integer position), so forecasts map back to dates.
        positions: ``(N, horizon)`` int array, the row of the input holding each target value.
        source_index: the index of the input (a ``RangeIndex`` for NumPy input); the label of
            target step ``h`` of window ``i`` is ``source_index[positions[i, h]]``.
        target: the target columns, as positions in the input's columns.
    """

    def __new__(cls, X, y, index, positions, source_index, target):
        self = super().__new__(cls, (X, y))
        self.X = X
        self.y = y
        self.index = index
        self.positions = positions
        self.source_index = source_index
        self.target = target
        return self

    def __getnewargs__(self):
        return (self.X, self.y, self.index, self.positions, self.source_index, self.target)

    def __repr__(self):
        return f"Supervised(X shape={self.X.shape}, y shape={self.y.shape})"


def resolve_columns(owner: str, name: str, spec, columns: pd.Index | None, n_features: int):
    """Turn a column spec (None, int, label, or a list of them) into (positions, was_scalar)."""
    if spec is None:
        return list(range(n_features)), n_features == 1
    scalar = is_integer(spec) or isinstance(spec, str) or not hasattr(spec, "__iter__")
    items = [spec] if scalar else list(spec)
    if not items:
        raise ValueError(f"{owner}: `{name}` is an empty list; name at least one column, or pass None for all.")
    positions = []
    for item in items:
        try:
            labelled = columns is not None and not isinstance(item, (bool, np.bool_)) and item in columns
        except TypeError:  # an unhashable item cannot be a label
            labelled = False
        if labelled and isinstance(columns.get_loc(item), (int, np.integer)):
            positions.append(int(columns.get_loc(item)))
        elif is_integer(item) and not labelled:
            if not -n_features <= item < n_features:
                raise ValueError(
                    f"{owner}: `{name}` column {item} is out of range for data with {n_features} "
                    f"feature(s); use a position in 0..{n_features - 1}.")
            positions.append(int(item) % n_features)
        else:
            known = "" if columns is None else f" The columns are: {', '.join(repr(c) for c in columns)}."
            how = "an integer position" if columns is None else "a unique column name or integer position"
            raise ValueError(f"{owner}: `{name}` {item!r} is not {how} of `data`.{known}")
    if len(set(positions)) != len(positions):
        raise ValueError(f"{owner}: `{name}` names a column more than once: {items!r}.")
    return positions, scalar


def to_supervised(data, lookback: int, horizon: int = 1, stride: int = 1, target=None,
                  features=None, *, allow_nan: bool = False) -> Supervised:
    """Frame a series as supervised windows: ``lookback`` steps in, the next ``horizon`` steps out.

    Window ``i`` starts at row ``s = i * stride``; its inputs are rows ``s .. s+lookback-1`` and
    its targets rows ``s+lookback .. s+lookback+horizon-1``. The number of windows is
    ``N = (T - lookback - horizon) // stride + 1``. Windows never reach past the end of the data
    and are never shuffled.

    Args:
        data: the series, oldest first: 1-D ``(T,)`` or 2-D ``(T, F)`` array-like, ``Series`` or
            ``DataFrame``.
        lookback: input steps per window (>= 1).
        horizon: target steps per window (>= 1); more than one is a multi-step forecast.
        stride: steps between the starts of consecutive windows (>= 1).
        target: the column(s) to predict: ``None`` for all, a column name or position, or a
            list of them. A single name/position (or ``None`` with one feature) gives a 2-D ``y``.
        features: the input column(s), same forms as ``target``; ``None`` for all.
        allow_nan: keep NaN values in the windows (mark them afterwards with
            :func:`mark_missing`); by default NaN raises.

    Returns:
        :class:`Supervised`, unpacking as ``X, y``; float32 input stays float32, anything else
        becomes float64.

    Shape:
        - data: ``(T,)`` or ``(T, F)``
        - X: ``(N, lookback, F_in)``
        - y: ``(N, horizon)`` or ``(N, horizon, F_target)``

    >>> X, y = to_supervised([10, 20, 30, 40, 50], lookback=2)
    >>> X[:, :, 0].tolist(), y.tolist()
    ([[10.0, 20.0], [20.0, 30.0], [30.0, 40.0]], [[30.0], [40.0], [50.0]])
    >>> s = pd.Series([1.0, 2, 3, 4], index=pd.period_range("2000-01", periods=4, freq="M"))
    >>> to_supervised(s, lookback=2).index.astype(str).tolist()
    ['2000-03', '2000-04']
    """
    owner = "to_supervised"
    array, info = check_array(owner, "data", data, ndims=(1, 2), allow_nan=check_bool(owner, "allow_nan", allow_nan))
    lookback = check_int(owner, "lookback", lookback, minimum=1)
    horizon = check_int(owner, "horizon", horizon, minimum=1)
    stride = check_int(owner, "stride", stride, minimum=1)
    values = array if array.ndim == 2 else array[:, None]  # (T, F)
    n_steps, n_features = values.shape
    columns = info.columns if info.kind == "frame" else None
    target_cols, scalar_target = resolve_columns(owner, "target", target, columns, n_features)
    input_cols, _ = resolve_columns(owner, "features", features, columns, n_features)
    if n_steps < lookback + horizon:
        raise ValueError(
            f"{owner}: `data` has {n_steps} time steps, fewer than `lookback` + `horizon` = "
            f"{lookback} + {horizon} = {lookback + horizon}; use a shorter lookback or horizon, "
            f"or a longer series.")
    n_windows = (n_steps - lookback - horizon) // stride + 1
    starts = np.arange(n_windows) * stride
    input_rows = starts[:, None] + np.arange(lookback)  # (N, lookback)
    positions = starts[:, None] + lookback + np.arange(horizon)  # (N, horizon)
    X = values[:, input_cols][input_rows]  # (N, lookback, F_in)
    y = values[:, target_cols][positions]  # (N, horizon, F_target)
    if scalar_target:
        y = y[..., 0]
    source_index = info.index if info.kind != "ndarray" else pd.RangeIndex(n_steps)
    index = source_index[positions[:, 0]]
    return Supervised(X, y, index, positions, source_index, tuple(target_cols))

