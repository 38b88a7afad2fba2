"""MinMaxScaler and StandardScaler: known answers, train-only fitting, scikit-learn compatibility."""

import numpy as np
import pandas as pd
import pytest

from lstmkit import datasets
from lstmkit.data import MinMaxScaler, StandardScaler, time_split, to_supervised
from lstmkit.errors import NotFittedError


def test_min_max_known_answer_per_feature():
    X = np.array([[0.0, 10.0], [5.0, 20.0], [10.0, 30.0]])
    scaler = MinMaxScaler(feature_range=(-1, 1)).fit(X)
    assert scaler.data_min_.tolist() == [0, 10] and scaler.data_max_.tolist() == [10, 30]
    assert scaler.transform(X).tolist() == [[-1, -1], [0, 0], [1, 1]]
    assert np.array_equal(scaler.inverse_transform(scaler.transform(X)), X)


def test_standard_known_answer():
    scaler = StandardScaler().fit(np.array([[1.0], [3.0]]))
    assert scaler.mean_.tolist() == [2.0] and scaler.scale_.tolist() == [1.0]
    assert scaler.transform([[5.0]]).tolist() == [[3.0]]
    assert scaler.inverse_transform([[3.0]]).tolist() == [[5.0]]


def test_standard_without_mean_or_std():
    X = np.array([[2.0], [4.0]])
    assert StandardScaler(with_mean=False).fit(X).transform(X).tolist() == [[2.0], [4.0]]
    assert StandardScaler(with_std=False).fit(X).transform(X).tolist() == [[-1.0], [1.0]]
    identity = StandardScaler(with_mean=False, with_std=False).fit(X)
    out = identity.transform(X)
    assert out.tolist() == X.tolist() and out is not X


def test_constant_feature_does_not_divide_by_zero():
    X = np.array([[3.0, 1.0], [3.0, 2.0]])
    assert MinMaxScaler().fit(X).transform(X)[:, 0].tolist() == [0.0, 0.0]
    assert StandardScaler().fit(X).transform(X)[:, 0].tolist() == [0.0, 0.0]


def test_three_d_windows_scale_per_feature():
    X = np.arange(24.0).reshape(2, 4, 3)  # (B, T, F)
    scaler = MinMaxScaler().fit(X)
    assert scaler.n_features_in_ == 3 and scaler.n_samples_seen_ == 8
    out = scaler.transform(X)
    assert out.shape == X.shape and out.min() == 0 and out.max() == 1
    assert np.allclose(scaler.inverse_transform(out), X)


def test_one_d_is_a_single_feature():
    scaler = MinMaxScaler().fit([2.0, 4.0, 6.0])
    assert scaler.transform([4.0]).tolist() == [0.5]


def test_pandas_in_pandas_out():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 4.0, 6.0]}, index=list("xyz"))
    scaler = StandardScaler().fit(frame)
    out = scaler.transform(frame)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["a", "b"] and list(out.index) == list("xyz")
    assert scaler.feature_names_in_.tolist() == ["a", "b"]
    series = pd.Series([1.0, 2.0], name="s")
    assert isinstance(MinMaxScaler().fit(series).transform(series), pd.Series)


def test_float32_stays_float32():
    X = np.array([[1.0], [2.0]], dtype=np.float32)
    assert MinMaxScaler().fit(X).transform(X).dtype == np.float32


def test_nan_is_ignored_in_fit_and_kept_in_transform():
    X = np.array([[0.0], [np.nan], [10.0]])
    out = MinMaxScaler().fit(X).transform(X)
    assert out[0, 0] == 0 and np.isnan(out[1, 0]) and out[2, 0] == 1


def test_test_data_does_not_leak_into_the_fit():
    series = datasets.load("airline_passengers")
    train, test = time_split(series, sizes=(0.75, 0.25))
    scaler = MinMaxScaler().fit(train.to_numpy()[:, None])
    # The statistics are the training split's only ...
    assert scaler.data_min_[0] == train.min() and scaler.data_max_[0] == train.max()
    assert train.max() < test.max()
    # ... so the (larger) test values land above the range instead of squeezing the training data.
    test_scaled = scaler.transform(test.to_numpy()[:, None])
    assert test_scaled.max() > 1.0
    # Fitting on all the data would have given different training inputs: the leak is measurable.
    leaky = MinMaxScaler().fit(series.to_numpy()[:, None])
    assert not np.allclose(leaky.transform(train.to_numpy()[:, None]), scaler.transform(train.to_numpy()[:, None]))
    # And refitting on train alone after seeing test changes nothing.
    again = MinMaxScaler().fit(train.to_numpy()[:, None])
    assert np.array_equal(again.scale_, scaler.scale_) and np.array_equal(again.min_, scaler.min_)


def test_scaling_windows_fitted_on_train_windows_only():
    x = np.arange(20.0)
    X, y = to_supervised(x, lookback=3)
    (X_train, y_train), (X_test, y_test) = time_split(X, y, sizes=(0.5, 0.5))
    scaler = StandardScaler().fit(X_train)
    assert scaler.mean_[0] == X_train.mean()
    assert scaler.mean_[0] < X_test.mean()


def test_use_before_fit():
    with pytest.raises(NotFittedError, match=r"MinMaxScaler\.transform: this MinMaxScaler is not fitted yet; call "
                                             r"fit\(X\) on the training data first\."):
        MinMaxScaler().transform([[1.0]])
    with pytest.raises(NotFittedError, match=r"StandardScaler\.inverse_transform: this StandardScaler is not "
                                             r"fitted yet"):
        StandardScaler().inverse_transform([[1.0]])


def test_bad_input():
    scaler = MinMaxScaler().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"MinMaxScaler\.transform: `X` has 3 feature\(s\) \(its last axis\), but "
                                         r"the scaler was fitted on 2; pass data with the same columns"):
        scaler.transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"MinMaxScaler\.fit: `X` contains 1 infinite value \(first at position "
                                         r"\(1, 0\)\)"):
        MinMaxScaler().fit(np.array([[1.0], [np.inf]]))
    with pytest.raises(ValueError, match=r"StandardScaler\.fit: feature 1 of `X` is all NaN; there is nothing to "
                                         r"fit it on\."):
        StandardScaler().fit(np.array([[1.0, np.nan], [2.0, np.nan]]))
    with pytest.raises(TypeError, match=r"StandardScaler\.fit: `X` has non-numeric column 'c' \(.*\)"):
        StandardScaler().fit(pd.DataFrame({"a": [1.0], "c": ["x"]}))
    with pytest.raises(ValueError, match=r"MinMaxScaler\.fit: `X` is empty \(shape \(0, 2\)\)"):
        MinMaxScaler().fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"MinMaxScaler: `feature_range` must have lo < hi, got \(1, 0\); e\.g\. "
                                         r"\(0, 1\) or \(-1, 1\)\."):
        MinMaxScaler(feature_range=(1, 0)).fit([1.0, 2.0])
    with pytest.raises(TypeError, match=r"MinMaxScaler: `feature_range` must be a pair \(lo, hi\), got 5\."):
        MinMaxScaler(feature_range=5).fit([1.0])


def test_clip():
    scaler = MinMaxScaler(clip=True).fit([0.0, 1.0])
    assert scaler.transform([2.0, -1.0]).tolist() == [1.0, 0.0]


def test_params_protocol():
    scaler = MinMaxScaler(feature_range=(-1, 1))
    assert scaler.get_params() == {"feature_range": (-1, 1), "clip": False}
    assert scaler.set_params(clip=True) is scaler and scaler.clip is True
    with pytest.raises(ValueError, match=r"MinMaxScaler\.set_params: unknown parameter 'range'\. Expected one of: "
                                         r"'feature_range', 'clip'\."):
        scaler.set_params(range=(0, 1))
    assert repr(StandardScaler()) == "StandardScaler(with_mean=True, with_std=True)"


def test_drops_into_a_scikit_learn_pipeline():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(50, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 4.0
    pipe = make_pipeline(StandardScaler(), MinMaxScaler(feature_range=(-1, 1)), LinearRegression())
    pipe.fit(X, y)
    assert np.allclose(pipe.predict(X), y)
    cloned = clone(pipe)
    assert cloned.steps[1][1].get_params() == {"feature_range": (-1, 1), "clip": False}
    assert not hasattr(cloned.steps[0][1], "mean_")
    ours = StandardScaler().fit(X)
    theirs = sklearn.preprocessing.StandardScaler().fit(X)
    assert np.allclose(ours.transform(X), theirs.transform(X))
    assert np.allclose(MinMaxScaler((-1, 1)).fit(X).transform(X),
                       sklearn.preprocessing.MinMaxScaler((-1, 1)).fit(X).transform(X))
