"""Time-series forecasting with LSTMs: the forecaster, walk-forward backtests, baselines, metrics.

- :class:`Forecaster` (``fit`` / ``predict`` / ``save``) and :func:`load_forecaster`
- :func:`backtest`: walk-forward validation of a forecaster next to the baselines, and
  :func:`select` to choose settings on the training part only
- baselines: :func:`naive` (persistence), :func:`seasonal_naive`, :func:`drift`, :func:`mean`
- metrics: :func:`rmse`, :func:`mae`, :func:`mape`, :func:`smape`, :func:`mase`

Names are imported on first use, so that the ``lstmkit`` command (which registers
``lstmkit.forecast.cli``) starts without importing torch.
"""

import importlib

_WHERE = {
    "BacktestResult": "evaluation", "backtest": "evaluation", "select": "evaluation",
    "BASELINES": "baselines", "drift": "baselines", "mean": "baselines", "naive": "baselines",
    "seasonal_naive": "baselines",
    "STRATEGIES": "forecaster", "Forecaster": "forecaster", "infer_season": "forecaster",
    "load_forecaster": "forecaster",
    "mae": "metrics", "mape": "metrics", "mase": "metrics", "mase_scale": "metrics", "rmse": "metrics",
    "smape": "metrics",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"lstmkit.forecast.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lstmkit.forecast' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
