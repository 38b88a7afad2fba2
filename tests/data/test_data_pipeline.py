"""Pipeline: difference -> scale -> window, fitted on train, predictions inverted in reverse."""

import numpy as np
import pandas as pd
import pytest

from lstmkit import datasets
from lstmkit.data import (Differencer, MinMaxScaler, Pipeline, StandardScaler, time_split,
                          to_supervised)
from lstmkit.errors import NotFittedError


def test_by_hand_difference_then_window():
    x = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0])
    pipe = Pipeline([Differencer(1)], lookback=2, horizon=2)
    windows = pipe.fit_transform(x)
    # differences: 1, 2, 3, 4, 5
    assert windows.X[:, :, 0].tolist() == [[1, 2], [2, 3]]
    assert windows.y.tolist() == [[3, 4], [4, 5]]
    assert windows.positions.tolist() == [[3, 4], [4, 5]]  # rows of x
    assert pipe.inverse_transform_y(windows.y, windows).tolist() == [[7, 11], [11, 16]]


def test_multi_step_inverse_uses_only_the_past():
    x = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0])
    pipe = Pipeline([Differencer(1)], lookback=2, horizon=2)
    windows = pipe.fit_transform(x)
    # Predict a constant difference of 10 for both steps: levels are the last input + 10, + 20.
    pred = np.full_like(windows.y, 10.0)
    assert pipe.inverse_transform_y(pred, windows).tolist() == [[14, 24], [17, 27]]


def test_round_trip_on_airline_with_first_and_seasonal_differencing():
    series = datasets.load("airline_passengers")
    lags, lookback, horizon = 13, 12, 3
    train, test = time_split(series, sizes=(0.75, 0.25), overlap=lags + lookback)
    pipe = Pipeline([Differencer(1), Differencer(12), MinMaxScaler((-1, 1))], lookback, horizon)
    pipe.fit(train)
    windows = pipe.transform(test)
    truth = to_supervised(test, lags + lookback, horizon)
    assert windows.y.shape == truth.y.shape == (34, 3)
    assert windows.index.equals(truth.index)
    assert str(windows.index[0]) == "1958-01"  # the first month after the training split
    assert np.allclose(pipe.inverse_transform_y(windows.y, windows), truth.y, rtol=0, atol=1e-9)
    assert np.abs(windows.X).max() < 3  # scaled, not raw passenger counts


def test_scaler_in_pipeline_is_fitted_on_train_only():
    series = datasets.load("airline_passengers")
    train, test = time_split(series, sizes=(0.5, 0.5), overlap=4)
    scaler = StandardScaler()
    pipe = Pipeline([scaler], lookback=4).fit(train)
    assert scaler.mean_[0] == train.mean()
    pipe.transform(test)
    assert scaler.mean_[0] == train.mean()  # transforming test data never refits


def test_multivariate_target_subset_round_trip():
    frame = datasets.load("us_macrodata")[["realgdp", "realcons", "unemp"]]
    pipe = Pipeline([Differencer(4), StandardScaler()], lookback=8, horizon=2, target=["unemp", "realgdp"])
    windows = pipe.fit_transform(frame)
    assert windows.X.shape[1:] == (8, 3) and windows.y.shape[1:] == (2, 2)
    truth = to_supervised(frame, 4 + 8, 2, target=["unemp", "realgdp"])
    assert np.allclose(pipe.inverse_transform_y(windows.y, windows), truth.y, rtol=1e-12)


def test_sklearn_scaler_as_a_step():
    sklearn_preprocessing = pytest.importorskip("sklearn.preprocessing")
    x = np.arange(30.0) ** 1.5
    pipe = Pipeline([Differencer(1), sklearn_preprocessing.MinMaxScaler()], lookback=3)
    windows = pipe.fit_transform(x)
    assert np.allclose(pipe.inverse_transform_y(windows.y, windows), to_supervised(x, 4).y)


def test_pipeline_errors():
    pipe = Pipeline([Differencer(12)], lookback=12, horizon=2)
    with pytest.raises(NotFittedError, match=r"Pipeline\.transform: the pipeline is not fitted yet; call fit\(train\) "
                                             r"on the training series first\."):
        pipe.transform(np.zeros(40))
    with pytest.raises(ValueError, match=r"Pipeline\.fit: `data` has 20 time steps, fewer than the 26 needed: 12 "
                                         r"dropped by differencing \+ `lookback` 12 \+ `horizon` 2\."):
        pipe.fit(np.zeros(20))
    with pytest.raises(TypeError, match=r"Pipeline: `steps\[0\]` \(str\) has no fit, transform, inverse_transform; "
                                        r"each step needs fit, transform and inverse_transform\."):
        Pipeline(["scale"], lookback=2)
    pipe = Pipeline([StandardScaler()], lookback=2).fit(np.arange(10.0))
    other = Pipeline([StandardScaler()], lookback=2).fit(np.arange(10.0))
    windows = other.transform(np.arange(10.0))
    with pytest.raises(ValueError, match=r"Pipeline\.inverse_transform_y: `windows` must be what this pipeline's "
                                         r"transform\(\) returned"):
        pipe.inverse_transform_y(windows.y, windows)
    windows = pipe.transform(np.arange(10.0))
    with pytest.raises(ValueError, match=r"Pipeline\.inverse_transform_y: `y` has shape \(8,\) but the windows' "
                                         r"targets have \(8, 1\); pass predictions shaped like windows\.y\."):
        pipe.inverse_transform_y(windows.y[:, 0], windows)
    with pytest.raises(ValueError, match=r"Pipeline\.transform: `data` has 2 feature\(s\), but the pipeline was "
                                         r"fitted on 1\."):
        pipe.transform(np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"Pipeline: `target` 'x' is not a unique column name or integer position "
                                         r"of `data`\. The columns are: 'a'\."):
        Pipeline([], lookback=2, target="x").fit(pd.DataFrame({"a": np.arange(5.0)}))
