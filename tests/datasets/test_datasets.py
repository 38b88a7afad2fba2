"""Every shipped dataset loads with its documented shape, dtype, index and split sizes."""

import collections
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from lstmkit import datasets

SERIES = {
    # name: (length, index type, first label, last label, first value, last value)
    "airline_passengers": (144, pd.PeriodIndex, "1949-01", "1960-12", 112.0, 432.0),
    "shampoo_sales": (36, pd.PeriodIndex, "1991-01", "1993-12", 266.0, 646.9),
    "sunspots_monthly": (2820, pd.PeriodIndex, "1749-01", "1983-12", 58.0, 33.4),
    "melbourne_max_temperature": (3650, pd.DatetimeIndex, "1981-01-01", "1990-12-31", 38.1, 24.6),
}


def test_names_lists_every_required_dataset():
    assert datasets.names() == sorted([
        "airline_passengers", "basic_motions", "japanese_vowels", "melbourne_max_temperature",
        "shampoo_sales", "sunspots_monthly", "us_macrodata"])


@pytest.mark.parametrize("name", sorted(SERIES))
def test_univariate_series_shape_dtype_and_index(name):
    length, index_type, first, last, first_value, last_value = SERIES[name]
    y = datasets.load(name)
    assert isinstance(y, pd.Series)
    assert y.shape == (length,)
    assert y.dtype == np.float64
    assert isinstance(y.index, index_type)
    assert y.index.is_monotonic_increasing and y.index.is_unique
    assert str(y.index[0])[:len(first)] == first and str(y.index[-1])[:len(last)] == last
    assert y.iloc[0] == first_value and y.iloc[-1] == last_value
    assert np.isfinite(y.to_numpy()).all()
    assert y.attrs["description"] == datasets.describe(name)


@pytest.mark.parametrize("name", ["airline_passengers", "shampoo_sales", "sunspots_monthly"])
def test_monthly_series_have_no_gaps(name):
    index = datasets.load(name).index
    assert index.freqstr == "M"
    assert (index[1:] - index[:-1] == index.freq).all()


def test_melbourne_is_daily_without_leap_days():
    index = datasets.load("melbourne_max_temperature").index
    every_day = pd.date_range("1981-01-01", "1990-12-31", freq="D")
    leap_days = every_day[(every_day.month == 2) & (every_day.day == 29)]
    assert list(leap_days.strftime("%Y-%m-%d")) == ["1984-02-29", "1988-02-29"]
    assert index.equals(every_day.difference(leap_days).rename("date"))


def test_melbourne_is_the_maximum_series():
    y = datasets.load("melbourne_max_temperature")
    assert y.name == "max_temperature"
    # Summer maxima in Melbourne pass 40 C; the minimum series never comes close.
    assert y.max() > 40 and y.min() > 5


def test_airline_is_box_jenkins_series_g():
    y = datasets.load("airline_passengers")
    assert y["1949"].tolist() == [112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118]
    assert y.sum() == 40363


def test_us_macrodata():
    frame = datasets.load("us_macrodata")
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == (203, 12)
    assert list(frame.columns) == ["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi",
                                   "m1", "tbilrate", "unemp", "pop", "infl", "realint"]
    assert (frame.dtypes == np.float64).all()
    assert isinstance(frame.index, pd.PeriodIndex) and frame.index.freqstr.startswith("Q")
    assert str(frame.index[0]) == "1959Q1" and str(frame.index[-1]) == "2009Q3"
    assert frame.loc[pd.Period("1959Q1"), "realgdp"] == 2710.349
    assert np.isfinite(frame.to_numpy()).all()


def test_japanese_vowels_documented_sizes():
    data = datasets.load("japanese_vowels")
    assert isinstance(data, datasets.SequenceClassification)
    assert (len(data.X_train), len(data.X_test)) == (270, 370)
    lengths = [x.shape[0] for x in data.X_train + data.X_test]
    assert (min(lengths), max(lengths)) == (7, 29)
    assert all(x.shape[1] == 12 and x.dtype == np.float64 for x in data.X_train + data.X_test)
    assert data.classes == tuple(str(k) for k in range(1, 10))
    assert collections.Counter(data.y_train) == {str(k): 30 for k in range(1, 10)}
    assert len(data.y_test) == 370 and set(data.y_test) == set(data.classes)
    assert data.channels == tuple(f"c{k}" for k in range(12))


def test_japanese_vowels_first_case_verbatim():
    X_train, y_train, _, _ = datasets.load("japanese_vowels")
    assert X_train[0].shape == (20, 12)
    assert X_train[0][0, :3].tolist() == [1.860936, -0.207383, 0.261557]
    assert y_train[0] == "1"


def test_basic_motions_documented_sizes():
    X_train, y_train, X_test, y_test = datasets.load("basic_motions")
    assert np.stack(X_train).shape == (40, 100, 6)
    assert np.stack(X_test).shape == (40, 100, 6)
    expected = {"Standing": 10, "Running": 10, "Walking": 10, "Badminton": 10}
    assert collections.Counter(y_train) == expected and collections.Counter(y_test) == expected


def test_classification_cases_pad_into_a_batch():
    from lstmkit.data import pad_sequences

    X_train, _, X_test, _ = datasets.load("japanese_vowels")
    padded = pad_sequences(X_train + X_test)
    assert padded.values.shape == (640, 29, 12)
    assert padded.mask.sum() == padded.lengths.sum() == sum(x.shape[0] for x in X_train + X_test)


def test_every_registered_file_ships_and_nothing_else():
    shipped = {p.name for p in resources.files("lstmkit.datasets").joinpath("data").iterdir()
               if not p.name.startswith(".")}
    assert shipped == {e.filename for e in datasets._REGISTRY.values()}


def test_sources_md_has_an_entry_per_dataset():
    text = resources.files("lstmkit.datasets").joinpath("SOURCES.md").read_text(encoding="utf-8")
    for name in datasets.names():
        assert f"## {name} (" in text


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown dataset `name` 'airline'\. Expected one of: "
                                         r"'airline_passengers', 'basic_motions', .*'us_macrodata'\."):
        datasets.load("airline")
    with pytest.raises(ValueError, match=r"unknown dataset `name` 'nope'"):
        datasets.describe("nope")


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match=r"`name` must be a string, got 3 \(int\)"):
        datasets.load(3)


def test_loads_are_independent_copies():
    first = datasets.load("shampoo_sales")
    first.iloc[0] = -1.0
    assert datasets.load("shampoo_sales").iloc[0] == 266.0
