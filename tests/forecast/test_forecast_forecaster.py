"""The Forecaster: each strategy on noiseless signals, original units, covariates, save/load, errors."""

import numpy as np
import pandas as pd
import pytest

from lstmkit.errors import NotFittedError
from lstmkit.forecast import Forecaster, backtest, infer_season, load_forecaster

MONTHS = pd.period_range("2000-01", periods=120, freq="M")


def sine(n=120, period=12):
    return pd.Series(np.sin(2 * np.pi * np.arange(n) / period), index=MONTHS[:n], name="y")


@pytest.mark.parametrize("strategy", ["direct", "recursive", "seq2seq"])
def test_each_strategy_forecasts_a_noiseless_sine(strategy):
    series = sine()
    model = Forecaster(lookback=12, horizon=6, strategy=strategy, units=16, epochs=150, validation_split=0.0,
                       learning_rate=0.01)
    model.fit(series[:108])
    forecast = model.predict()
    truth = series[108:114]
    assert list(forecast.index) == list(truth.index)
    assert np.max(np.abs(forecast.to_numpy() - truth.to_numpy())) < 0.1  # amplitude 1


@pytest.mark.parametrize("strategy", ["direct", "recursive", "seq2seq"])
def test_each_strategy_continues_a_linear_trend_in_original_units(strategy):
    # Level ~1000, slope 5: differencing and scaling must both be undone on the way out.
    series = pd.Series(1000.0 + 5.0 * np.arange(60), index=MONTHS[:60])
    model = Forecaster(lookback=6, horizon=4, strategy=strategy, differencing=1, epochs=60, validation_split=0.0)
    forecast = model.fit(series).predict()
    np.testing.assert_allclose(forecast.to_numpy(), 1000.0 + 5.0 * np.arange(60, 64), atol=0.5)


def test_seasonal_differencing_and_minmax_scaling_invert_to_original_units():
    t = np.arange(96)
    series = pd.Series(500 + 3.0 * t + 40 * np.sin(2 * np.pi * t / 12), index=MONTHS[:96])
    model = Forecaster(lookback=12, horizon=12, differencing=["seasonal", 1], scaling="minmax", epochs=40,
                       validation_split=0.0)
    forecast = model.fit(series[:84]).predict()
    # After seasonal + first differencing this series is constant: the forecast is exact up to
    # how close the network gets to the constant target.
    np.testing.assert_allclose(forecast.to_numpy(), series[84:].to_numpy(), atol=1.0)
    assert model.lags_ == [12, 1]


def test_the_covariate_that_carries_the_signal_beats_the_univariate_model():
    rng = np.random.default_rng(0)
    x = np.zeros(160)
    for t in range(1, 160):  # a persistent but unpredictable driver
        x[t] = 0.6 * x[t - 1] + rng.normal()
    y = np.r_[0.0, 2.0 * x[:-1]]  # the target follows the driver one step later
    frame = pd.DataFrame({"y": y, "x": x}, index=pd.RangeIndex(160))
    settings = dict(lookback=4, horizon=1, epochs=60, validation_split=0.0, units=16)
    with_x = backtest(Forecaster(target="y", **settings), frame, test_size=30)
    without = backtest(Forecaster(target="y", **settings), frame[["y"]], test_size=30)
    assert with_x.metrics.loc["lstm", "RMSE"] < 0.5 * without.metrics.loc["lstm", "RMSE"]
    assert with_x.metrics.loc["lstm", "RMSE"] < 0.3  # the signal's spread is about 2.5


def test_recursive_with_covariates_forecasts_every_column():
    t = np.arange(80)
    frame = pd.DataFrame({"a": np.sin(t / 3), "b": np.cos(t / 3)}, index=pd.RangeIndex(80))
    model = Forecaster(lookback=8, horizon=3, strategy="recursive", target="b", epochs=80, validation_split=0.0)
    forecast = model.fit(frame).predict(horizon=5)  # recursive can go past its horizon
    assert forecast.name == "b" and list(forecast.index) == [80, 81, 82, 83, 84]
    np.testing.assert_allclose(forecast.to_numpy(), np.cos(np.arange(80, 85) / 3), atol=0.15)


def test_runs_differ_and_the_forecast_is_their_mean():
    model = Forecaster(lookback=12, horizon=3, epochs=5, n_runs=3).fit(sine(48))
    runs = model.predict(per_run=True)
    assert list(runs.columns) == ["run_1", "run_2", "run_3"]
    assert runs["run_1"].to_numpy().tolist() != runs["run_2"].to_numpy().tolist()
    np.testing.assert_allclose(model.predict().to_numpy(), runs.mean(axis=1).to_numpy())
    assert len(model.histories_) == 3


def test_fit_save_load_predict_gives_the_same_numbers(tmp_path):
    t = pd.date_range("2021-01-04", periods=50, freq="D", name="day")
    frame = pd.DataFrame({"sales": np.arange(50.0) % 7 + np.arange(50) * 0.1, "temp": np.cos(np.arange(50))},
                         index=t)
    model = Forecaster(lookback=7, horizon=3, strategy="seq2seq", target="sales", differencing=1, epochs=3,
                       n_runs=2).fit(frame)
    path = model.save(tmp_path / "f")
    same = load_forecaster(path)
    pd.testing.assert_series_equal(same.predict(), model.predict())
    assert same.predict().index[0] == pd.Timestamp("2021-02-23")
    newer = frame.iloc[:40]
    pd.testing.assert_series_equal(same.predict(series=newer), model.predict(series=newer))
    model.save(tmp_path / "f")  # overwriting a saved forecaster is allowed
    with pytest.raises(ValueError, match="not a saved forecaster"):
        model.save(tmp_path)


def test_infer_season():
    assert infer_season(pd.period_range("2000Q1", periods=4, freq="Q")) == 4
    assert infer_season(pd.date_range("2000-01-01", periods=10, freq="D")) == 7
    assert infer_season(pd.RangeIndex(3)) == 1


def test_errors_name_the_argument_and_the_fix():
    with pytest.raises(NotFittedError, match=r"call fit\(series\) first"):
        Forecaster(4).predict()
    with pytest.raises(ValueError, match="unknown `strategy` 'seq'"):
        Forecaster(4, strategy="seq")
    with pytest.raises(TypeError, match="`differencing` must be None, a lag"):
        Forecaster(4, differencing="yearly")
    with pytest.raises(ValueError, match="`target` 'z' is not a column"):
        Forecaster(4, target="z").fit(pd.DataFrame({"a": np.arange(20.0)}))
    with pytest.raises(ValueError, match="at least 8 are needed"):
        Forecaster(4, horizon=2, differencing=[1, 1]).fit(np.arange(7.0))
    with pytest.raises(ValueError, match="missing or infinite value in column 'a'"):
        Forecaster(2).fit(pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0]}))
    model = Forecaster(4, horizon=2, epochs=1).fit(np.arange(20.0))
    with pytest.raises(ValueError, match="`horizon`=3 exceeds the 2 steps"):
        model.predict(3)
