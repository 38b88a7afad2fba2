"""Forecast accuracy: RMSE, MAE, MAPE, sMAPE and MASE, on arrays in the series' own units.

Each metric takes ``y_true`` and ``y_pred`` of the same shape and averages over every element.
MASE (Hyndman & Koehler 2006) divides the MAE by the in-sample MAE of the seasonal naive forecast
on the *training* series, ``mean(|y[t] - y[t - m]|)``, so 1.0 means "as good as repeating the
value one season back, in sample" and values below 1 beat it. With ``season=1`` the scale is the
one-step persistence error.

>>> y, p = [100.0, 110.0, 120.0], [90.0, 110.0, 130.0]
>>> round(rmse(y, p), 4), mae(y, p), round(mape(y, p), 4)
(8.165, 6.666666666666667, 6.1111)
>>> mase(y, p, train=[80.0, 85.0, 95.0], season=1)
0.888888888888889
"""

from __future__ import annotations

import numpy as np

from lstmkit._validation import check_int

__all__ = ["METRICS", "mae", "mape", "mase", "mase_scale", "rmse", "smape"]


def _pair(owner: str, y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.shape != p.shape:
        raise ValueError(f"{owner}: `y_true` has shape {t.shape} but `y_pred` has {p.shape}; "
                         f"pass one prediction per actual value.")
    if t.size == 0:
        raise ValueError(f"{owner}: `y_true` is empty; there is nothing to score.")
    return t, p


def rmse(y_true, y_pred) -> float:
    """Root mean squared error, in the series' units."""
    t, p = _pair("rmse", y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error, in the series' units."""
    t, p = _pair("mae", y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error, in percent: ``100 * mean(|y - p| / |y|)``.

    Undefined where an actual value is 0: those raise rather than give ``inf``.
    """
    t, p = _pair("mape", y_true, y_pred)
    if np.any(t == 0):
        raise ValueError("mape: `y_true` contains zeros, where a percentage error is undefined; "
                         "use smape or mase instead.")
    return float(100.0 * np.mean(np.abs(t - p) / np.abs(t)))


def smape(y_true, y_pred) -> float:
    """Symmetric MAPE in percent (0 to 200): ``100 * mean(2 |y - p| / (|y| + |p|))``; 0/0 counts as 0.

    >>> smape([100.0, 0.0], [110.0, 0.0])
    4.761904761904762
    """
    t, p = _pair("smape", y_true, y_pred)
    denominator = np.abs(t) + np.abs(p)
    ratio = np.divide(2 * np.abs(t - p), denominator, out=np.zeros_like(t), where=denominator > 0)
    return float(100.0 * np.mean(ratio))


def mase_scale(train, season: int = 1) -> float:
    """The MASE denominator: the mean absolute ``season``-step difference of the training series.

    >>> mase_scale([1.0, 2.0, 4.0, 7.0], season=1)
    2.0
    """
    season = check_int("mase", "season", season, minimum=1)
    x = np.asarray(train, dtype=float).ravel()
    if x.size <= season:
        raise ValueError(f"mase: `train` has {x.size} values; the seasonal naive scale with `season`={season} "
                         f"needs at least {season + 1}. Pass a longer training series or a smaller season.")
    scale = float(np.mean(np.abs(x[season:] - x[:-season])))
    if scale == 0:
        raise ValueError(f"mase: `train` is constant at lag {season}, so the scale is 0 and MASE is undefined.")
    return scale


def mase(y_true, y_pred, train, season: int = 1) -> float:
    """Mean absolute scaled error: the MAE divided by :func:`mase_scale` ``(train, season)``."""
    t, p = _pair("mase", y_true, y_pred)
    return float(np.mean(np.abs(t - p)) / mase_scale(train, season))


# The columns of a result table, in order. MASE needs the training series, so it is computed by
# the backtest (which knows each fold's training part) rather than looked up here.
METRICS = {"RMSE": rmse, "MAE": mae, "MAPE": mape, "sMAPE": smape}
