"""to_3d and to_supervised against small hand-computed examples, and their errors."""

import numpy as np
import pandas as pd
import pytest

from lstmkit.data import Supervised, to_3d, to_supervised


# --- to_3d ---------------------------------------------------------------------------------------

def test_to_3d_univariate():
    out = to_3d(np.arange(6.0), timesteps=2)
    assert out.shape == (3, 2, 1)
    assert out[:, :, 0].tolist() == [[0, 1], [2, 3], [4, 5]]


def test_to_3d_multivariate_rows_stay_together():
    data = np.array([[0, 10], [1, 11], [2, 12], [3, 13]])
    out = to_3d(data, timesteps=2)
    assert out.tolist() == [[[0, 10], [1, 11]], [[2, 12], [3, 13]]]


def test_to_3d_unflattens_a_lag_matrix():
    flat = np.array([[1, 2, 3, 4, 5, 6]])  # one sample, 3 steps x 2 features, row-major
    assert to_3d(flat, timesteps=3, features=2).tolist() == [[[1, 2], [3, 4], [5, 6]]]


def test_to_3d_inverse_is_a_reshape():
    data = np.random.default_rng(0).normal(size=(12, 3))
    assert np.array_equal(to_3d(data, 4).reshape(-1, 3), data)


def test_to_3d_does_not_alias_input():
    data = np.zeros(4)
    to_3d(data, 2)[0, 0, 0] = 1.0
    assert data[0] == 0.0


def test_to_3d_sizes_that_do_not_divide():
    with pytest.raises(ValueError, match=r"to_3d: `data` of shape \(10,\) has 10 values, which do not divide "
                                         r"into samples of `timesteps` x `features` = 3 x 1 = 3\. Values of "
                                         r"`timesteps` that divide its 10 rows of 1 feature\(s\): 1, 2, 5, 10; "
                                         r"or keep the last 9 rows \(data\[-9:\]\)\."):
        to_3d(np.arange(10), timesteps=3)
    with pytest.raises(ValueError, match=r"shape \(5, 2\) has 10 values.*`timesteps` x `features` = 2 x 3 = 6\.$"):
        to_3d(np.zeros((5, 2)), timesteps=2, features=3)


def test_to_3d_bad_arguments():
    with pytest.raises(TypeError, match=r"to_3d: `timesteps` must be an integer, got 2\.5 \(float\)\."):
        to_3d(np.zeros(4), 2.5)
    with pytest.raises(ValueError, match=r"to_3d: `timesteps` must be >= 1, got 0\."):
        to_3d(np.zeros(4), 0)
    with pytest.raises(ValueError, match=r"to_3d: `data` must be 1-D \(time,\) or 2-D \(time, features\) or 3-D "
                                         r"\(samples, time, features\), got a 4-D array of shape \(1, 1, 1, 1\)\."):
        to_3d(np.zeros((1, 1, 1, 1)), 1)
    with pytest.raises(ValueError, match=r"to_3d: `data` is empty \(shape \(0,\)\); pass at least one time step\."):
        to_3d([], 1)


# --- to_supervised: hand-computed windows ------------------------------------------------------

def test_univariate_one_step():
    X, y = to_supervised([1, 2, 3, 4, 5, 6], lookback=3)
    assert X.shape == (3, 3, 1) and y.shape == (3, 1)
    assert X[:, :, 0].tolist() == [[1, 2, 3], [2, 3, 4], [3, 4, 5]]
    assert y.tolist() == [[4], [5], [6]]
    assert X.dtype == np.float64


def test_univariate_multi_step_with_stride():
    X, y = to_supervised(np.arange(10), lookback=3, horizon=2, stride=2)
    # windows start at 0, 2, 4: N = (10 - 3 - 2) // 2 + 1 = 3
    assert X[:, :, 0].tolist() == [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    assert y.tolist() == [[3, 4], [5, 6], [7, 8]]


def test_multivariate_all_targets():
    data = np.array([[1, 10], [2, 20], [3, 30], [4, 40]])
    X, y = to_supervised(data, lookback=2)
    assert X.tolist() == [[[1, 10], [2, 20]], [[2, 20], [3, 30]]]
    assert y.shape == (2, 1, 2)
    assert y.tolist() == [[[3, 30]], [[4, 40]]]


def test_multivariate_one_target_column_multi_step():
    data = np.array([[1, 10], [2, 20], [3, 30], [4, 40], [5, 50]])
    X, y = to_supervised(data, lookback=2, horizon=2, target=1)
    assert X.shape == (2, 2, 2)
    assert X[1].tolist() == [[2, 20], [3, 30]]
    assert y.tolist() == [[30, 40], [40, 50]]


def test_dataframe_target_and_features_by_name():
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [5.0, 6, 7, 8], "c": [9.0, 10, 11, 12]},
                         index=pd.date_range("2020-01-01", periods=4, freq="D"))
    windows = to_supervised(frame, lookback=2, target=["c", "a"], features=["b"])
    assert windows.X[:, :, 0].tolist() == [[5, 6], [6, 7]]
    assert windows.y.tolist() == [[[11, 3]], [[12, 4]]]
    assert windows.target == (2, 0)
    assert list(windows.index.strftime("%Y-%m-%d")) == ["2020-01-03", "2020-01-04"]


def test_series_keeps_the_time_index_of_each_target():
    series = pd.Series(np.arange(6.0), index=pd.period_range("1949-01", periods=6, freq="M"))
    windows = to_supervised(series, lookback=2, horizon=3)
    assert isinstance(windows, Supervised)
    assert windows.index.astype(str).tolist() == ["1949-03", "1949-04"]
    assert windows.positions.tolist() == [[2, 3, 4], [3, 4, 5]]
    labels = windows.source_index[windows.positions[1]]
    assert labels.astype(str).tolist() == ["1949-04", "1949-05", "1949-06"]
    assert np.array_equal(windows.y, series.to_numpy()[windows.positions])


def test_numpy_index_is_positions():
    windows = to_supervised(np.arange(5.0), lookback=2)
    assert windows.index.tolist() == [2, 3, 4]


def test_float32_stays_float32():
    X, y = to_supervised(np.arange(5, dtype=np.float32), lookback=2)
    assert X.dtype == np.float32 and y.dtype == np.float32


def test_windows_are_copies():
    data = np.arange(5.0)
    X, _ = to_supervised(data, lookback=2)
    X[0, 0, 0] = 99
    assert data[0] == 0


def test_exactly_lookback_plus_horizon_gives_one_window():
    X, y = to_supervised(np.arange(4.0), lookback=3, horizon=1)
    assert X.shape == (1, 3, 1) and y.tolist() == [[3.0]]


def test_allow_nan_keeps_nan_for_masking():
    X, y = to_supervised([1.0, np.nan, 3.0, 4.0], lookback=2, allow_nan=True)
    assert np.isnan(X[0, 1, 0]) and y.tolist() == [[3.0], [4.0]]


# --- to_supervised: bad input ------------------------------------------------------------------

def test_series_too_short():
    with pytest.raises(ValueError, match=r"to_supervised: `data` has 5 time steps, fewer than `lookback` \+ "
                                         r"`horizon` = 4 \+ 2 = 6; use a shorter lookback or horizon, or a "
                                         r"longer series\."):
        to_supervised(np.arange(5.0), lookback=4, horizon=2)


def test_nan_says_how_many_and_where():
    with pytest.raises(ValueError, match=r"to_supervised: `data` contains 2 NaN values \(first at position 1\); "
                                         r"fill or drop them, or mark them for masking with "
                                         r"lstmkit\.data\.mark_missing\."):
        to_supervised([1.0, np.nan, 3.0, np.nan, 5.0], lookback=2)
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, np.nan]}, index=[10, 20, 30])
    with pytest.raises(ValueError, match=r"contains 1 NaN value \(first at row 30, column 'y'\)"):
        to_supervised(frame, lookback=1)


def test_infinity_says_how_many_and_where():
    with pytest.raises(ValueError, match=r"to_supervised: `data` contains 1 infinite value \(first at position "
                                         r"\(2, 0\)\); replace them with finite numbers"):
        to_supervised(np.array([[1.0], [2.0], [np.inf], [4.0]]), lookback=1)


def test_non_numeric_columns_are_named():
    frame = pd.DataFrame({"temp": [1.0, 2.0, 3.0], "city": ["a", "b", "c"], "note": ["x", "y", "z"]})
    with pytest.raises(TypeError, match=r"to_supervised: `data` has non-numeric columns 'city' \(.*\), 'note' "
                                        r"\(.*\); drop them or encode them as numbers first"):
        to_supervised(frame, lookback=1)
    with pytest.raises(TypeError, match=r"`data` must hold numbers, got an array of dtype <U1"):
        to_supervised(np.array(["a", "b", "c"]), lookback=1)
    with pytest.raises(TypeError, match=r"`data` is a Series of dtype (object|str), not numbers"):
        to_supervised(pd.Series(["a", "b", "c"]), lookback=1)


def test_empty_and_wrong_dimensionality():
    with pytest.raises(ValueError, match=r"to_supervised: `data` is empty \(shape \(0, 3\)\)"):
        to_supervised(np.zeros((0, 3)), lookback=1)
    with pytest.raises(ValueError, match=r"to_supervised: `data` must be 1-D \(time,\) or 2-D \(time, features\), "
                                         r"got a 3-D array of shape \(2, 3, 4\)\."):
        to_supervised(np.zeros((2, 3, 4)), lookback=1)
    with pytest.raises(TypeError, match=r"to_supervised: `data` must be an array, Series or DataFrame of "
                                        r"numbers, got None\."):
        to_supervised(None, lookback=1)


def test_bad_window_arguments():
    with pytest.raises(ValueError, match=r"to_supervised: `lookback` must be >= 1, got 0\."):
        to_supervised(np.arange(5.0), lookback=0)
    with pytest.raises(ValueError, match=r"to_supervised: `horizon` must be >= 1, got 0\."):
        to_supervised(np.arange(5.0), lookback=1, horizon=0)
    with pytest.raises(TypeError, match=r"to_supervised: `stride` must be an integer, got '2' \(str\)\."):
        to_supervised(np.arange(5.0), lookback=1, stride="2")
    with pytest.raises(TypeError, match=r"to_supervised: `allow_nan` must be True or False, got 1 \(int\)\."):
        to_supervised(np.arange(5.0), lookback=1, allow_nan=1)


def test_bad_target_columns():
    frame = pd.DataFrame({"a": [1.0, 2, 3], "b": [4.0, 5, 6]})
    with pytest.raises(ValueError, match=r"to_supervised: `target` 'z' is not a unique column name or integer "
                                         r"position of `data`\. The columns are: 'a', 'b'\."):
        to_supervised(frame, lookback=1, target="z")
    with pytest.raises(ValueError, match=r"to_supervised: `target` column 2 is out of range for data with 2 "
                                         r"feature\(s\); use a position in 0\.\.1\."):
        to_supervised(frame.to_numpy(), lookback=1, target=2)
    with pytest.raises(ValueError, match=r"to_supervised: `features` names a column more than once"):
        to_supervised(frame, lookback=1, features=["a", 0])
    with pytest.raises(ValueError, match=r"to_supervised: `target` is an empty list"):
        to_supervised(frame, lookback=1, target=[])
