"""Time-series forecasting with LSTMs: the forecaster, walk-forward backtests, baselines, metrics.

- :class:`Forecaster` (``fit`` / ``predict`` / ``save``) and :func:`load_forecaster`
- :func:`backtest`: walk-forward validation of a forecaster next to the baselines, and
  :func:`select` to choose settings on the training part only
- baselines: :func:`naive` (persistence), :func:`seasonal_naive`, :func:`drift`, :func:`mean`
- metrics: :func:`rmse`, :func:`mae`, :func:`mape`, :func:`smape`, :func:`mase`
"""

from lstmkit.forecast.backtest import BacktestResult, backtest, select
from lstmkit.forecast.baselines import BASELINES, drift, mean, naive, seasonal_naive
from lstmkit.forecast.forecaster import STRATEGIES, Forecaster, infer_season, load_forecaster
from lstmkit.forecast.metrics import mae, mape, mase, rmse, smape

__all__ = ["BASELINES", "BacktestResult", "Forecaster", "STRATEGIES", "backtest", "drift", "infer_season",
           "load_forecaster", "mae", "mape", "mase", "mean", "naive", "rmse", "seasonal_naive", "select", "smape"]
