"""Lag-k differencing (k = 1 for trend, k = the season for seasonal) and its inverse.

``difference`` computes ``d[t] = x[t + k] - x[t]`` and drops the first ``k`` values, which are
exactly the *history* that :func:`inverse_difference` needs to rebuild the series:
``x[t] = d[t - k] + x[t - k]``, run forward from the history.

Exactness: the inverse repeats the same float64 additions the recursion implies, in order, so
difference -> inverse reproduces the input bit for bit whenever every difference is itself exact
in float64: integer-valued data below 2**53, values on a common power-of-two grid (e.g. multiples
of 0.25), and pairs within a factor of two of each other (Sterbenz's lemma). For other decimal
data a difference can be rounded by half an ulp, and the rebuilt value then differs from the
original by at most a few ulps, growing at most linearly along the series; no scheme that stores
only float64 differences can avoid that, because the rounding discards the information.
"""

from __future__ import annotations

import numpy as np

from lstmkit._validation import check_int
from lstmkit.data._base import Transformer
from lstmkit.data._checks import check_array, check_bool

__all__ = ["Differencer", "difference", "inverse_difference"]


def _check_lag(owner: str, lag, n_steps: int, name: str = "data") -> int:
    lag = check_int(owner, "lag", lag, minimum=1)
    if n_steps <= lag:
        raise ValueError(f"{owner}: `{name}` has {n_steps} time steps; differencing at `lag`={lag} needs "
                         f"at least {lag + 1} (lag + 1). Use a smaller lag or a longer series.")
    return lag


def difference(data, lag: int = 1, *, allow_nan: bool = False):
    """Return the lag-``lag`` differences ``data[lag:] - data[:-lag]``.

    Seasonal differencing is the same with ``lag`` set to the season (12 for monthly data with a
    yearly cycle). Keep ``data[:lag]``: it is the history :func:`inverse_difference` needs.

    Args:
        data: 1-D ``(T,)`` or 2-D ``(T, F)`` array-like, ``Series`` or ``DataFrame``; time first.
        lag: the distance ``k`` between the values subtracted (>= 1).
        allow_nan: let NaN through (it spreads to the two differences it touches).

    Returns:
        the differences, same type as ``data``; pandas objects keep the index of ``data[lag:]``.

    Shape:
        - data: ``(T,)`` or ``(T, F)``
        - output: ``(T - lag,)`` or ``(T - lag, F)``

    >>> difference([1.0, 4.0, 9.0, 16.0]).tolist()
    [3.0, 5.0, 7.0]
    >>> difference([1.0, 2.0, 3.0, 11.0, 12.0, 13.0], lag=3).tolist()
    [10.0, 10.0, 10.0]
    """
    owner = "difference"
    array, info = check_array(owner, "data", data, ndims=(1, 2), allow_nan=check_bool(owner, "allow_nan", allow_nan))
    lag = _check_lag(owner, lag, array.shape[0])
    out = array[lag:] - array[:-lag]
    return info.wrap(out, None if info.index is None else info.index[lag:])


def inverse_difference(diffs, history, lag: int = 1):
    """Rebuild a series from its lag-``lag`` differences and the ``lag`` values that precede them.

    Args:
        diffs: differences as returned by :func:`difference` (or forecast ones), time first.
        history: the original values just before ``diffs[0]``; at least ``lag`` of them, of
            which the last ``lag`` are used. For ``diffs = difference(x, lag)`` that is
            ``x[:lag]``; to undo forecast differences it is the last ``lag`` observed values.
        lag: the lag the differences were taken at.

    Returns:
        the rebuilt values (without the history), same type and shape as ``diffs``.

    Shape:
        - diffs: ``(n,)`` or ``(n, F)``
        - history: ``(m,)`` or ``(m, F)`` with ``m >= lag``
        - output: same as diffs

    >>> x = np.array([1.0, 4.0, 9.0, 16.0])
    >>> inverse_difference(difference(x), history=x[:1]).tolist()
    [4.0, 9.0, 16.0]
    """
    owner = "inverse_difference"
    d, info = check_array(owner, "diffs", diffs, ndims=(1, 2), allow_nan=True)
    lag = check_int(owner, "lag", lag, minimum=1)
    if history is None:
        raise ValueError(f"{owner}: `history` is None, but undoing lag-{lag} differences needs the "
                         f"{lag} original value(s) just before the first difference; pass x[:{lag}] "
                         f"for diffs = difference(x, {lag}), or the last {lag} observations.")
    h, _ = check_array(owner, "history", history, ndims=(1, 2), allow_nan=True)
    if h.shape[1:] != d.shape[1:]:
        raise ValueError(f"{owner}: `history` has shape {h.shape} but `diffs` has {d.shape}; they must "
                         f"agree beyond the time axis (the same features).")
    if h.shape[0] < lag:
        raise ValueError(f"{owner}: `history` has {h.shape[0]} value(s) but `lag`={lag} needs the {lag} "
                         f"original values that precede the differenced series; pass x[:{lag}] (the "
                         f"values that difference() dropped) or the last {lag} observations.")
    return info.wrap(_rebuild(d, h[-lag:], lag))


def _rebuild(d: np.ndarray, history: np.ndarray, lag: int) -> np.ndarray:
    """x[t] = d[t] + x[t - lag], evaluated as a running sum down each of the ``lag`` phases."""
    dtype = np.result_type(d.dtype, history.dtype)
    n = d.shape[0]
    blocks = -(-n // lag)  # ceil
    padded = np.zeros((blocks * lag,) + d.shape[1:], dtype=dtype)
    padded[:n] = d
    stacked = np.concatenate([history.astype(dtype)[None], padded.reshape((blocks, lag) + d.shape[1:])])
    # np.cumsum accumulates strictly in order, so each sum is exactly x[t - lag] + d[t].
    rebuilt = np.cumsum(stacked, axis=0)[1:]  # (blocks, lag, ...)
    return rebuilt.reshape((blocks * lag,) + d.shape[1:])[:n]


class Differencer(Transformer):
    """Lag-``lag`` differencing as a fit / transform / inverse_transform transformer.

    ``transform`` returns ``lag`` fewer rows than it gets (see :func:`difference`).
    ``fit`` keeps the first and the last ``lag`` rows of the training series, ``head_`` and
    ``tail_``. ``inverse_transform(D)`` undoes ``transform`` of the fitted series: it rebuilds
    from ``head_`` and returns the whole series, ``head_`` included, so
    ``inverse_transform(transform(train))`` is ``train`` again and chained differencers invert in
    reverse order. ``inverse_transform(D, history=h)`` instead continues from ``h`` (e.g.
    ``tail_`` for forecasts past the end of the training series) and returns only the ``len(D)``
    rebuilt rows. Chain two for first and seasonal differencing, e.g. in
    :class:`lstmkit.data.Pipeline`.

    Shape:
        - X: ``(T,)`` or ``(T, F)``
        - transform: ``(T - lag,)`` or ``(T - lag, F)``
        - inverse_transform: ``(T,)`` without ``history`` (a NumPy array: ``head_`` has no
          index); ``(len(D),)`` with it, same type as ``D`` (``, F`` likewise for 2-D)

    >>> diff = Differencer(lag=2).fit([1.0, 2.0, 4.0, 7.0, 11.0])
    >>> d = diff.transform([1.0, 2.0, 4.0, 7.0, 11.0]); d.tolist()
    [3.0, 5.0, 7.0]
    >>> diff.inverse_transform(d).tolist()
    [1.0, 2.0, 4.0, 7.0, 11.0]
    >>> diff.inverse_transform([9.0], history=diff.tail_).tolist()  # one step past the end
    [16.0]
    """

    def __init__(self, lag: int = 1):
        self.lag = lag

    def fit(self, X, y=None):
        """Remember the first and last ``lag`` rows of ``X``; returns ``self``."""
        owner = "Differencer.fit"
        array, _ = check_array(owner, "X", X, ndims=(1, 2))
        lag = _check_lag(owner, self.lag, array.shape[0], "X")
        self.n_features_in_ = 1 if array.ndim == 1 else array.shape[1]
        self.head_ = array[:lag].copy()
        self.tail_ = array[-lag:].copy()
        return self

    def _check_shape(self, method: str, array: np.ndarray, name: str) -> None:
        self._check_fitted(method)
        features = 1 if array.ndim == 1 else array.shape[1]
        if features != self.n_features_in_:
            raise ValueError(f"Differencer.{method}: `{name}` has {features} feature(s), but the "
                             f"differencer was fitted on {self.n_features_in_}.")

    def transform(self, X):
        """Return the lag differences of ``X`` (``lag`` rows shorter)."""
        owner = "Differencer.transform"
        array, _ = check_array(owner, "X", X, ndims=(1, 2))
        self._check_shape("transform", array, "X")
        _check_lag(owner, self.lag, array.shape[0], "X")
        return difference(X, self.lag)

    def inverse_transform(self, X, history=None):
        """Rebuild levels from differences ``X``: the fitted series from ``head_`` (``history=None``),
        or the ``len(X)`` values that follow ``history`` (see the class docstring)."""
        array, _ = check_array("Differencer.inverse_transform", "X", X, ndims=(1, 2), allow_nan=True)
        self._check_shape("inverse_transform", array, "X")
        if history is not None:
            return inverse_difference(X, history, self.lag)
        head = self.head_.reshape((self.head_.shape[0],) + array.shape[1:])
        rebuilt = np.concatenate([head, _rebuild(array, head, self.lag)])
        return rebuilt
