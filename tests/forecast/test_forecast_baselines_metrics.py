"""Baselines and metrics against values worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from lstmkit.forecast import Forecaster, backtest, drift, mae, mape, mase, mean, naive, rmse, seasonal_naive, smape


def test_persistence_repeats_the_last_value():
    assert naive([3.0, 5.0, 4.0, 6.0], 3).tolist() == [6.0, 6.0, 6.0]


def test_persistence_in_a_backtest_matches_a_hand_computed_value():
    # Series 1, 2, 4, 7, 11, 16; hold out the last two, one step at a time. Persistence forecasts
    # 7 for 11 and 11 for 16: errors 4 and 5, RMSE = sqrt((16 + 25) / 2), MAE = 4.5.
    # MASE scales: mean |diff| of 1,2,4,7 = (1+2+3)/3 = 2 and of 1,2,4,7,11 = (1+2+3+4)/4 = 2.5,
    # so the scaled errors are 4/2 = 2 and 5/2.5 = 2.
    series = pd.Series([1.0, 2.0, 4.0, 7.0, 11.0, 16.0])
    result = backtest(Forecaster(lookback=1, horizon=1, epochs=1), series, test_size=2, season=1)
    assert result.predictions["naive"].tolist() == [7.0, 11.0]
    assert result.metrics.loc["naive", "RMSE"] == pytest.approx(math.sqrt(20.5))
    assert result.metrics.loc["naive", "MAE"] == pytest.approx(4.5)
    assert result.metrics.loc["naive", "MASE"] == pytest.approx(2.0)
    assert result.metrics.loc["naive", "MAPE"] == pytest.approx(100 * (4 / 11 + 5 / 16) / 2)
    # The drift line through (0, 1) and (3, 7) continues at slope 2: 9 for 11; then slope 2.5: 13.5.
    assert result.predictions["drift"].tolist() == pytest.approx([9.0, 13.5])
    assert result.predictions["mean"].tolist() == pytest.approx([3.5, 5.0])


def test_seasonal_naive_takes_the_value_one_season_back():
    history = [1.0, 2.0, 3.0, 10.0, 20.0, 30.0]
    assert seasonal_naive(history, 5, season=3).tolist() == [10.0, 20.0, 30.0, 10.0, 20.0]
    assert seasonal_naive(history, 2, season=1).tolist() == [30.0, 30.0]


def test_drift_and_mean():
    assert drift([2.0, 4.0, 6.0], 2).tolist() == [8.0, 10.0]
    assert mean([2.0, 4.0, 9.0], 2).tolist() == [5.0, 5.0]


def test_baseline_errors_name_the_argument():
    with pytest.raises(ValueError, match="`history` has 2 value"):
        seasonal_naive([1.0, 2.0], 1, season=3)
    with pytest.raises(ValueError, match="NaN"):
        naive([1.0, float("nan")], 1)
    with pytest.raises(ValueError, match="`horizon` must be >= 1"):
        naive([1.0], 0)


def test_metrics_by_hand():
    y, p = [2.0, 4.0, 8.0], [1.0, 4.0, 10.0]
    assert rmse(y, p) == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert mae(y, p) == pytest.approx(1.0)
    assert mape(y, p) == pytest.approx(100 * (0.5 + 0 + 0.25) / 3)
    assert smape(y, p) == pytest.approx(100 * (2 / 3 + 0 + 4 / 18) / 3)
    # Training series 0, 3, 1, 4 with season 2: |1-0|, |4-3| -> scale 1; MAE 1 -> MASE 1.
    assert mase(y, p, train=[0.0, 3.0, 1.0, 4.0], season=2) == pytest.approx(1.0)


def test_metric_errors():
    with pytest.raises(ValueError, match="zeros"):
        mape([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"`y_true` has shape \(2,\) but `y_pred` has \(3,\)"):
        rmse([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="constant"):
        mase([1.0], [1.0], train=[5.0, 5.0, 5.0])


def test_result_table_puts_the_lstm_above_each_baseline():
    t = pd.period_range("2000-01", periods=40, freq="M")
    series = pd.Series(np.sin(np.arange(40) * np.pi / 6) + 5, index=t)
    result = backtest(Forecaster(lookback=12, horizon=3, epochs=2, n_runs=2), series, test_size=6)
    text = result.table()
    lines = text.splitlines()
    assert lines[0].split()[:6] == ["model", "RMSE", "MAE", "MAPE", "sMAPE", "MASE"]
    assert lines[2].startswith("LSTM (mean of 2)") and lines[3].strip().startswith("single runs")
    assert [line.split()[0] for line in lines[4:8]] == ["persistence", "seasonal", "drift", "mean"]
    assert "best baseline" in lines[-1]
    assert list(result.per_step.index) == [1, 2, 3]
    assert len(result.runs) == 2
    assert result.predictions["fold"].nunique() == 2
