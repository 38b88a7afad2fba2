"""Time-ordered splits and walk-forward folds."""

import numpy as np
import pandas as pd
import pytest

from lstmkit.data import Fold, time_split, to_supervised, walk_forward


def test_fractions_split_in_time_order():
    train, val, test = time_split(np.arange(10), sizes=(0.6, 0.2, 0.2))
    assert train.tolist() == [0, 1, 2, 3, 4, 5] and val.tolist() == [6, 7] and test.tolist() == [8, 9]


def test_counts_and_several_aligned_arrays():
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    (X_tr, y_tr), (X_te, y_te) = time_split(X, y, sizes=(7, 3))
    assert X_tr.shape == (7, 2) and y_te.tolist() == [7, 8, 9]
    assert np.array_equal(X_te[:, 0] // 2, y_te)


def test_pandas_keeps_its_index():
    series = pd.Series(np.arange(6.0), index=pd.date_range("2020-01-01", periods=6, freq="D"))
    train, test = time_split(series, sizes=(0.5, 0.5))
    assert str(train.index[-1].date()) == "2020-01-03" and str(test.index[0].date()) == "2020-01-04"


def test_overlap_gives_test_windows_whose_targets_start_at_the_split():
    x = np.arange(20.0)
    train, test = time_split(x, sizes=(15, 5), overlap=3)
    assert test.tolist() == [12, 13, 14, 15, 16, 17, 18, 19]
    _, y = to_supervised(test, lookback=3)
    assert y[:, 0].tolist() == [15, 16, 17, 18, 19]  # targets never reach back into train


def test_lists_are_split_too():
    assert time_split(list("abcd"), sizes=(2, 2)) == [["a", "b"], ["c", "d"]]


def test_shuffle_only_when_asked():
    parts = time_split(np.arange(100), sizes=(0.5, 0.5), shuffle=True, seed=0)
    assert not np.array_equal(parts[0], np.arange(50))
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))
    again = time_split(np.arange(100), sizes=(0.5, 0.5), shuffle=True, seed=0)
    assert np.array_equal(parts[0], again[0])


def test_split_errors():
    with pytest.raises(ValueError, match=r"time_split: fractions in `sizes` must each be in \(0, 1\) and add up to "
                                         r"1, got \[0\.5, 0\.4\] \(sum 0\.9\)\."):
        time_split(np.arange(10), sizes=(0.5, 0.4))
    with pytest.raises(ValueError, match=r"time_split: row counts in `sizes` must be >= 1 and add up to the 10 rows "
                                         r"of the data, got \[5, 4\] \(sum 9\)\."):
        time_split(np.arange(10), sizes=(5, 4))
    with pytest.raises(ValueError, match=r"time_split: `sizes` \[0\.95, 0\.05\] leaves part 1 empty for data of 5 "
                                         r"rows \(counts \[5, 0\]\)"):
        time_split(np.arange(5), sizes=[0.95, 0.05])
    with pytest.raises(ValueError, match=r"time_split: `arrays\[1\]` has 3 rows but `arrays\[0\]` has 4; the arrays "
                                         r"must be aligned along time\."):
        time_split(np.arange(4), np.arange(3), sizes=(2, 2))
    with pytest.raises(ValueError, match=r"time_split: `arrays\[0\]` is empty; there is nothing to split\."):
        time_split(np.array([]), sizes=(0.5, 0.5))
    with pytest.raises(ValueError, match=r"time_split: `overlap`=2 must be smaller than the first part's 2 rows\."):
        time_split(np.arange(4), sizes=(2, 2), overlap=2)
    with pytest.raises(ValueError, match=r"time_split: `overlap` needs time order; it cannot be combined with "
                                         r"shuffle=True\."):
        time_split(np.arange(4), sizes=(2, 2), overlap=1, shuffle=True)
    with pytest.raises(TypeError, match=r"time_split: `sizes` must be all fractions or all integer row counts"):
        time_split(np.arange(4), sizes=(2, 0.5))
    with pytest.raises(ValueError, match=r"time_split: `sizes` needs at least two parts"):
        time_split(np.arange(4), sizes=(1.0,))


def test_walk_forward_expanding_by_hand():
    folds = walk_forward(np.arange(7), initial=3, test_size=2)
    assert [(f.train.tolist(), f.test.tolist()) for f in folds] == [([0, 1, 2], [3, 4]), ([0, 1, 2, 3, 4], [5, 6])]
    assert all(isinstance(f, Fold) for f in folds)


def test_walk_forward_sliding_with_step():
    folds = walk_forward(10, initial=4, test_size=1, step=2, window="sliding")
    assert [(f.train.tolist(), f.test.tolist()) for f in folds] == [
        ([0, 1, 2, 3], [4]), ([2, 3, 4, 5], [6]), ([4, 5, 6, 7], [8])]


def test_walk_forward_never_tests_on_the_past():
    for fold in walk_forward(50, initial=10, test_size=3, step=1):
        assert fold.train.max() < fold.test.min()


def test_walk_forward_works_as_cv_splits():
    x = np.arange(8.0)
    pairs = [(x[train], x[test]) for train, test in walk_forward(x, initial=6)]
    assert [p[1].tolist() for p in pairs] == [[6.0], [7.0]]


def test_walk_forward_errors():
    with pytest.raises(ValueError, match=r"walk_forward: `data` has 5 rows, fewer than `initial` \+ `test_size` = "
                                         r"4 \+ 2 = 6; there is no complete fold\."):
        walk_forward(5, initial=4, test_size=2)
    with pytest.raises(ValueError, match=r"walk_forward: unknown `window` 'rolling'\. Expected one of: "
                                         r"'expanding', 'sliding'\."):
        walk_forward(10, 3, window="rolling")
    with pytest.raises(ValueError, match=r"walk_forward: `data` is empty; there is nothing to fold\."):
        walk_forward([], 1)
    with pytest.raises(ValueError, match=r"walk_forward: `initial` must be >= 1, got 0\."):
        walk_forward(10, 0)
