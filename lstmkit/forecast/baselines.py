"""Baseline forecasts that any model must beat: persistence, seasonal naive, drift and mean.

Each function takes the observed history (oldest first) and returns the next ``horizon`` values:

- ``naive`` (persistence): the last observation, repeated.
- ``seasonal_naive``: the value one season earlier, ``y[T + h - m * ceil(h / m)]``.
- ``drift``: the straight line through the first and last observations, extended.
- ``mean``: the mean of the history.

>>> history = [10.0, 12.0, 11.0, 15.0]
>>> naive(history, 2).tolist(), drift(history, 2).round(3).tolist(), mean(history, 1).tolist()
([15.0, 15.0], [16.667, 18.333], [12.0])
>>> seasonal_naive([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 4, season=3).tolist()
[4.0, 5.0, 6.0, 4.0]
"""

from __future__ import annotations

import numpy as np

from lstmkit._validation import check_int

__all__ = ["BASELINES", "drift", "mean", "naive", "seasonal_naive"]


def _history(owner: str, history, horizon: int, needed: int = 1) -> tuple[np.ndarray, int]:
    x = np.asarray(history, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{owner}: `history` must be 1-D (one series, oldest first), got shape {x.shape}.")
    if x.size < needed:
        raise ValueError(f"{owner}: `history` has {x.size} value(s); this baseline needs at least {needed}.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{owner}: `history` contains NaN or infinite values; fill or drop them first.")
    return x, check_int(owner, "horizon", horizon, minimum=1)


def naive(history, horizon: int, season: int = 1) -> np.ndarray:
    """Persistence: every future value equals the last observation. ``season`` is ignored."""
    x, horizon = _history("naive", history, horizon)
    return np.full(horizon, x[-1])


def seasonal_naive(history, horizon: int, season: int = 1) -> np.ndarray:
    """Each future value equals the observation one season (``season`` steps) before it."""
    season = check_int("seasonal_naive", "season", season, minimum=1)
    x, horizon = _history("seasonal_naive", history, horizon, needed=season)
    h = np.arange(1, horizon + 1)
    back = season * np.ceil(h / season).astype(int)  # steps back from T + h to an observed value
    return x[x.size - 1 + h - back]


def drift(history, horizon: int, season: int = 1) -> np.ndarray:
    """The last value plus ``h`` times the average change over the history. ``season`` is ignored."""
    x, horizon = _history("drift", history, horizon, needed=2)
    slope = (x[-1] - x[0]) / (x.size - 1)
    return x[-1] + slope * np.arange(1, horizon + 1)


def mean(history, horizon: int, season: int = 1) -> np.ndarray:
    """Every future value equals the mean of the history. ``season`` is ignored."""
    x, horizon = _history("mean", history, horizon)
    return np.full(horizon, x.mean())


BASELINES = {"naive": naive, "seasonal_naive": seasonal_naive, "drift": drift, "mean": mean}
