"""Small public datasets that ship inside lstmkit, loaded from CSV with no network access.

>>> from lstmkit import datasets
>>> datasets.names()[:3]
['airline_passengers', 'basic_motions', 'japanese_vowels']
>>> y = datasets.load("airline_passengers")
>>> y.shape, str(y.index[0]), y.iloc[0]
((144,), '1949-01', np.float64(112.0))

Forecasting series come back as pandas objects with a time index: a ``Series`` (univariate) or a
``DataFrame`` (multivariate) indexed by a monthly or quarterly ``PeriodIndex`` or a daily
``DatetimeIndex``; values are float64. Classification sets come back as a
:class:`SequenceClassification` holding their standard train/test split (see its docstring for the
layout). Every file's origin, licence and extraction are in ``SOURCES.md`` beside this module.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np
import pandas as pd

__all__ = ["SequenceClassification", "describe", "load", "names"]


@dataclasses.dataclass(frozen=True)
class _Entry:
    filename: str
    kind: str  # "series", "frame" or "classification"
    description: str


_REGISTRY: dict[str, _Entry] = {
    "airline_passengers": _Entry(
        "airline_passengers.csv", "series",
        "Monthly international airline passengers (thousands), 1949-01 to 1960-12; "
        "Box & Jenkins series G. 144 values."),
    "shampoo_sales": _Entry(
        "shampoo_sales.csv", "series",
        "Monthly shampoo sales over three years (36 values). The source numbers the years 1-3 "
        "only; the calendar years 1991-1993 in the index are a placeholder."),
    "sunspots_monthly": _Entry(
        "sunspots_monthly.csv", "series",
        "Monthly mean relative sunspot numbers, 1749-01 to 1983-12 (R's `sunspots`). "
        "2820 values."),
    "melbourne_max_temperature": _Entry(
        "melbourne_max_temperature.csv", "series",
        "Daily MAXIMUM temperatures (deg C) in Melbourne, Australia, 1981-01-01 to 1990-12-31, "
        "with the leap days 1984-02-29 and 1988-02-29 omitted by the source. 3650 values."),
    "us_macrodata": _Entry(
        "us_macrodata.csv", "frame",
        "US quarterly macroeconomic data, 1959Q1 to 2009Q3 (statsmodels' macrodata): "
        "203 quarters x 12 variables."),
    "japanese_vowels": _Entry(
        "japanese_vowels.csv.gz", "classification",
        "JapaneseVowels (UCI): 12 LPC cepstrum coefficients per frame, utterances of 7-29 frames "
        "from 9 speakers; 270 train / 370 test; classes '1'..'9' (the speaker)."),
    "basic_motions": _Entry(
        "basic_motions.csv.gz", "classification",
        "BasicMotions (UEA): 3-D accelerometer + 3-D gyroscope of a smart watch, 100 steps at "
        "10 Hz; 4 classes (Standing, Running, Walking, Badminton); 40 train / 40 test."),
}


@dataclasses.dataclass(frozen=True)
class SequenceClassification:
    """A sequence-classification dataset with its standard train/test split.

    Each ``X_*`` is a list with one float64 array per case, of shape ``(T_i, C)``: time steps by
    channels, batch-first once stacked. Lengths may differ between cases (JapaneseVowels: 7-29), so
    the cases are not pre-padded; use :func:`lstmkit.data.pad_sequences` to get a ``(B, T, C)``
    array with its mask and lengths, or ``np.stack`` when every case has the same length
    (BasicMotions: ``(40, 100, 6)``). ``y_*`` are string labels, one per case, and ``classes`` the
    sorted distinct labels. Iterating yields ``X_train, y_train, X_test, y_test``.

    Shape:
        - ``X_train[i]``: ``(T_i, C)``
        - ``y_train``: ``(len(X_train),)``, dtype object (str)

    >>> from lstmkit import datasets
    >>> X_train, y_train, X_test, y_test = datasets.load("basic_motions")
    >>> len(X_train), X_train[0].shape, sorted(set(y_train))
    (40, (100, 6), ['Badminton', 'Running', 'Standing', 'Walking'])
    """

    name: str
    X_train: list
    y_train: np.ndarray
    X_test: list
    y_test: np.ndarray
    classes: tuple
    channels: tuple
    description: str

    def __iter__(self):
        return iter((self.X_train, self.y_train, self.X_test, self.y_test))


def names() -> list[str]:
    """Return the names :func:`load` accepts, sorted.

    >>> "us_macrodata" in names()
    True
    """
    return sorted(_REGISTRY)


def describe(name: str) -> str:
    """Return a one-paragraph description of dataset ``name``.

    >>> describe("shampoo_sales").startswith("Monthly shampoo sales")
    True
    """
    return _entry(name).description


def load(name: str):
    """Load a shipped dataset by name; nothing is downloaded.

    Args:
        name: one of :func:`names`.

    Returns:
        ``pandas.Series`` for a univariate series, ``pandas.DataFrame`` for a multivariate one
        (both float64, time-indexed, ``.name`` / ``.attrs["description"]`` set), or a
        :class:`SequenceClassification` for a classification set.

    Shape:
        - ``airline_passengers``: ``(144,)``, ``PeriodIndex`` monthly
        - ``shampoo_sales``: ``(36,)``, ``PeriodIndex`` monthly
        - ``sunspots_monthly``: ``(2820,)``, ``PeriodIndex`` monthly
        - ``melbourne_max_temperature``: ``(3650,)``, ``DatetimeIndex`` daily (no leap days)
        - ``us_macrodata``: ``(203, 12)``, ``PeriodIndex`` quarterly
        - ``japanese_vowels``: 270 / 370 cases of ``(T_i, 12)``, ``7 <= T_i <= 29``
        - ``basic_motions``: 40 / 40 cases of ``(100, 6)``

    >>> load("us_macrodata").shape
    (203, 12)
    """
    entry = _entry(name)
    if entry.kind == "classification":
        return _load_classification(name, entry)
    if entry.kind == "frame":
        return _load_macrodata(name, entry)
    return _load_series(name, entry)


def _entry(name) -> _Entry:
    if not isinstance(name, str):
        raise TypeError(f"datasets: `name` must be a string, got {name!r} ({type(name).__name__}).")
    try:
        return _REGISTRY[name]
    except KeyError:
        listed = ", ".join(repr(n) for n in names())
        raise ValueError(f"datasets: unknown dataset `name` {name!r}. Expected one of: {listed}.") from None


def _open(entry: _Entry):
    return resources.files("lstmkit.datasets").joinpath("data", entry.filename).open("rb")


def _load_series(name: str, entry: _Entry) -> pd.Series:
    with _open(entry) as fh:
        frame = pd.read_csv(fh)
    time_column, value_column = frame.columns
    if time_column == "month":
        index = pd.PeriodIndex(frame[time_column], freq="M", name="month")
    else:
        index = pd.DatetimeIndex(pd.to_datetime(frame[time_column], format="%Y-%m-%d"), name="date")
    series = pd.Series(frame[value_column].to_numpy(dtype=np.float64), index=index, name=value_column)
    series.attrs["description"] = entry.description
    return series


def _load_macrodata(name: str, entry: _Entry) -> pd.DataFrame:
    with _open(entry) as fh:
        frame = pd.read_csv(fh)
    starts = [f"{y}Q{q}" for y, q in zip(frame["year"], frame["quarter"])]
    index = pd.PeriodIndex(starts, freq="Q-DEC")
    values = frame.drop(columns=["year", "quarter"]).astype(np.float64)
    values.index = index.rename("quarter")
    values.attrs["description"] = entry.description
    return values


def _load_classification(name: str, entry: _Entry) -> SequenceClassification:
    with _open(entry) as fh:
        frame = pd.read_csv(fh, compression="gzip", dtype={"split": str, "label": str})
    channels = tuple(c for c in frame.columns if c not in ("split", "case", "step", "label"))
    parts = {}
    for split in ("train", "test"):
        rows = frame[frame["split"] == split].sort_values(["case", "step"], kind="stable")
        values = rows[list(channels)].to_numpy(dtype=np.float64)
        cases = rows["case"].to_numpy()
        # Each case's rows are contiguous after the sort: cut the block at every change of case.
        starts = np.flatnonzero(np.r_[True, cases[1:] != cases[:-1]])
        X = [block.copy() for block in np.split(values, starts[1:])]
        y = rows["label"].to_numpy(dtype=object)[starts]
        parts[split] = (X, y)
    classes = tuple(sorted(set(parts["train"][1]) | set(parts["test"][1])))
    return SequenceClassification(
        name=name, X_train=parts["train"][0], y_train=parts["train"][1], X_test=parts["test"][0],
        y_test=parts["test"][1], classes=classes, channels=channels, description=entry.description)
