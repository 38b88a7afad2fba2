"""Lag and seasonal differencing, the exact inverse, and the Differencer transformer."""

import numpy as np
import pandas as pd
import pytest

from lstmkit import datasets
from lstmkit.data import Differencer, difference, inverse_difference
from lstmkit.errors import NotFittedError


def test_lag_one_by_hand():
    assert difference([3.0, 5.0, 4.0, 10.0]).tolist() == [2.0, -1.0, 6.0]


def test_seasonal_lag_by_hand():
    x = np.array([1.0, 2, 3, 4, 11, 12, 13, 14, 31, 32, 33, 34])
    assert difference(x, lag=4).tolist() == [10, 10, 10, 10, 20, 20, 20, 20]


def test_multivariate_columns_are_independent():
    x = np.array([[1.0, 10], [2, 30], [4, 60]])
    assert difference(x).tolist() == [[1, 20], [2, 30]]


def test_pandas_keeps_the_index_of_the_later_value():
    s = pd.Series([1.0, 4.0, 9.0], index=pd.period_range("2000-01", periods=3, freq="M"), name="v")
    d = difference(s)
    assert isinstance(d, pd.Series) and d.name == "v"
    assert d.index.astype(str).tolist() == ["2000-02", "2000-03"]
    frame = pd.DataFrame({"a": [1.0, 2.0, 4.0]})
    assert difference(frame)["a"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("lag", [1, 2, 3, 12])
def test_round_trip_is_bit_exact_on_integer_data(lag):
    x = np.random.default_rng(lag).integers(-10**6, 10**6, size=(40, 3)).astype(np.float64)
    rebuilt = inverse_difference(difference(x, lag), history=x[:lag], lag=lag)
    assert np.array_equal(rebuilt, x[lag:])


@pytest.mark.parametrize("name, lag", [("airline_passengers", 1), ("airline_passengers", 12),
                                       ("shampoo_sales", 1), ("melbourne_max_temperature", 1)])
def test_round_trip_is_bit_exact_on_shipped_series(name, lag):
    x = datasets.load(name)
    rebuilt = inverse_difference(difference(x, lag), history=x.iloc[:lag], lag=lag)
    assert np.array_equal(rebuilt.to_numpy(), x.to_numpy()[lag:])
    assert rebuilt.index.equals(x.index[lag:])


def test_round_trip_on_decimals_is_within_rounding():
    # Decimal data whose differences are not exact in float64 (see the module docstring).
    x = datasets.load("us_macrodata").to_numpy()
    rebuilt = inverse_difference(difference(x, 4), history=x[:4], lag=4)
    assert np.allclose(rebuilt, x[4:], rtol=1e-13, atol=0)


def test_inverse_uses_the_last_lag_values_of_a_longer_history():
    x = np.arange(10.0) ** 2
    assert np.array_equal(inverse_difference(difference(x[5:], 2), history=x[:7], lag=2), x[7:])


def test_inverse_without_enough_history():
    with pytest.raises(ValueError, match=r"inverse_difference: `history` has 2 value\(s\) but `lag`=12 needs the "
                                         r"12 original values that precede the differenced series; pass x\[:12\] "
                                         r"\(the values that difference\(\) dropped\) or the last 12 observations\."):
        inverse_difference(np.zeros(5), history=[1.0, 2.0], lag=12)
    with pytest.raises(ValueError, match=r"inverse_difference: `history` is None, but undoing lag-3 differences "
                                         r"needs the 3 original value\(s\) just before the first difference"):
        inverse_difference(np.zeros(5), history=None, lag=3)
    with pytest.raises(ValueError, match=r"inverse_difference: `history` has shape \(2,\) but `diffs` has "
                                         r"\(5, 2\); they must agree beyond the time axis"):
        inverse_difference(np.zeros((5, 2)), history=[1.0, 2.0])


def test_difference_bad_input():
    with pytest.raises(ValueError, match=r"difference: `data` has 3 time steps; differencing at `lag`=3 needs at "
                                         r"least 4 \(lag \+ 1\)\. Use a smaller lag or a longer series\."):
        difference([1.0, 2.0, 3.0], lag=3)
    with pytest.raises(ValueError, match=r"difference: `data` contains 1 NaN value \(first at position 1\)"):
        difference([1.0, np.nan, 3.0])
    assert np.isnan(difference([1.0, np.nan, 3.0], allow_nan=True)).all()
    with pytest.raises(ValueError, match=r"difference: `lag` must be >= 1, got 0\."):
        difference([1.0, 2.0], lag=0)


def test_differencer_inverts_its_training_series_and_continues_it():
    train = np.array([5.0, 7.0, 6.0, 9.0, 13.0, 12.0])
    diff = Differencer(lag=2).fit(train)
    d = diff.transform(train)
    assert d.tolist() == [1.0, 2.0, 7.0, 3.0]
    assert np.array_equal(diff.inverse_transform(d), train)
    # Forecast differences for the two steps after the end use the last two observations.
    assert diff.inverse_transform([1.0, 2.0], history=diff.tail_).tolist() == [14.0, 14.0]


def test_chained_first_and_seasonal_differencing_inverts_in_reverse():
    x = datasets.load("airline_passengers").to_numpy()
    first = Differencer(1).fit(x)
    d1 = first.transform(x)
    seasonal = Differencer(12).fit(d1)
    d2 = seasonal.transform(d1)
    assert d2.shape == (131,)
    assert np.array_equal(first.inverse_transform(seasonal.inverse_transform(d2)), x)


def test_differencer_errors():
    with pytest.raises(NotFittedError, match=r"Differencer\.inverse_transform: this Differencer is not fitted yet; "
                                             r"call fit\(X\) on the training data first\."):
        Differencer().inverse_transform([1.0])
    with pytest.raises(ValueError, match=r"Differencer\.fit: `X` has 2 time steps; differencing at `lag`=4 needs "
                                         r"at least 5"):
        Differencer(4).fit([1.0, 2.0])
    diff = Differencer().fit(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"Differencer\.transform: `X` has 3 feature\(s\), but the differencer "
                                         r"was fitted on 2\."):
        diff.transform(np.zeros((4, 3)))
