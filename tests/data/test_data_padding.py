"""pad_sequences / unpad_sequences and NaN-missing marking."""

import numpy as np
import pandas as pd
import pytest

from lstmkit.data import mark_missing, pad_sequences, restore_missing, unpad_sequences


def test_post_padding_by_hand():
    values, mask, lengths = pad_sequences([[1.0, 2.0], [3.0], [4.0, 5.0, 6.0]])
    assert values.tolist() == [[1, 2, 0], [3, 0, 0], [4, 5, 6]]
    assert mask.tolist() == [[True, True, False], [True, False, False], [True, True, True]]
    assert lengths.tolist() == [2, 1, 3] and lengths.dtype == np.int64
    assert mask.dtype == bool


def test_pre_padding_and_both_truncations():
    seqs = [[1, 2, 3, 4], [5]]
    assert pad_sequences(seqs, maxlen=3, padding="pre").values.tolist() == [[2, 3, 4], [0, 0, 5]]
    assert pad_sequences(seqs, maxlen=3, truncating="post").values.tolist() == [[1, 2, 3], [5, 0, 0]]
    padded = pad_sequences(seqs, maxlen=3, padding="pre", value=-1)
    assert padded.values.tolist() == [[2, 3, 4], [-1, -1, 5]]
    assert padded.mask.tolist() == [[True, True, True], [False, False, True]]
    assert padded.lengths.tolist() == [3, 1]


def test_multivariate_sequences():
    seqs = [np.ones((2, 3)), np.full((4, 3), 2.0)]
    padded = pad_sequences(seqs)
    assert padded.values.shape == (2, 4, 3)
    assert padded.values[0, 2:].tolist() == [[0, 0, 0], [0, 0, 0]]
    assert padded.mask.sum(axis=1).tolist() == [2, 4]


def test_empty_sequence_and_dtype():
    padded = pad_sequences([[], [1, 2]], dtype=np.float32, value=np.nan)
    assert padded.values.dtype == np.float32
    assert padded.mask.tolist() == [[False, False], [True, True]]
    assert np.isnan(padded.values[0]).all()


def test_integer_sequences_stay_integer():
    assert pad_sequences([[1, 2], [3]]).values.dtype.kind == "i"


def test_unpad_inverts_pad_for_either_side():
    seqs = [np.arange(3.0), np.arange(5.0), np.arange(1.0)]
    for padding in ("pre", "post"):
        padded = pad_sequences(seqs, padding=padding, value=-7)
        back = unpad_sequences(padded.values, padded.mask)
        assert all(np.array_equal(a, b) for a, b in zip(back, seqs))


def test_pad_errors():
    with pytest.raises(ValueError, match=r"pad_sequences: `sequences` is empty; pass at least one sequence\."):
        pad_sequences([])
    with pytest.raises(TypeError, match=r"pad_sequences: `sequences` must be a list of sequences, got int\."):
        pad_sequences(3)
    with pytest.raises(ValueError, match=r"pad_sequences: `sequences\[1\]` has shape \(2, 3\) but `sequences\[0\]` "
                                         r"has \(2, 2\); all sequences must agree beyond the time axis\."):
        pad_sequences([np.zeros((2, 2)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"pad_sequences: unknown `padding` 'middle'\. Expected one of: 'pre', "
                                         r"'post'\."):
        pad_sequences([[1]], padding="middle")
    with pytest.raises(ValueError, match=r"pad_sequences: `maxlen` must be >= 1, got 0\."):
        pad_sequences([[1]], maxlen=0)
    with pytest.raises(TypeError, match=r"pad_sequences: `sequences\[0\]` must hold numbers, got an array of dtype "
                                        r"<U1"):
        pad_sequences([["a", "b"]])
    with pytest.raises(ValueError, match=r"pad_sequences: `sequences\[0\]` is a scalar \(5\); each sequence must "
                                         r"have a time axis, e\.g\. \[5\]\."):
        pad_sequences([5])
    with pytest.raises(ValueError, match=r"pad_sequences: `value` 0\.5 cannot be stored in the integer dtype int64"):
        pad_sequences([[1, 2]], maxlen=3, value=0.5)


def test_unpad_errors():
    with pytest.raises(TypeError, match=r"unpad_sequences: `mask` must be a boolean array \(True = real step\), "
                                        r"got dtype int64\."):
        unpad_sequences(np.zeros((2, 3)), np.ones((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"unpad_sequences: `mask` must have the shape \(B, T\) of the first two "
                                         r"axes of `values`; got mask \(2, 2\) for values \(2, 3\)\."):
        unpad_sequences(np.zeros((2, 3)), np.ones((2, 2), dtype=bool))


def test_mark_missing_by_hand():
    data = np.array([[1.0, 2.0], [np.nan, 4.0], [np.nan, np.nan], [7.0, 8.0]])
    values, mask = mark_missing(data)
    assert mask.tolist() == [True, False, False, True]
    assert values.tolist() == [[1, 2], [0, 4], [0, 0], [7, 8]]
    assert mark_missing(data, how="all").mask.tolist() == [True, True, False, True]
    assert mark_missing(data, fill_value=-1.0).values[2].tolist() == [-1, -1]


def test_mark_missing_batched_and_1d():
    batch = np.ones((2, 3, 2))
    batch[1, 0, :] = np.nan
    assert mark_missing(batch).mask.tolist() == [[True, True, True], [False, True, True]]
    assert mark_missing([1.0, np.nan]).mask.tolist() == [True, False]


def test_mark_missing_keeps_pandas():
    frame = pd.DataFrame({"a": [1.0, np.nan]}, index=["x", "y"])
    values, mask = mark_missing(frame)
    assert isinstance(values, pd.DataFrame) and list(values.index) == ["x", "y"]
    assert mask.tolist() == [True, False]


def test_restore_missing_inverts_whole_missing_steps():
    data = np.array([[1.0, 2.0], [np.nan, np.nan], [5.0, 6.0]])
    restored = restore_missing(*mark_missing(data))
    assert np.array_equal(restored, data, equal_nan=True)


def test_mark_missing_errors():
    with pytest.raises(ValueError, match=r"mark_missing: `data` contains 1 infinite value \(first at position 1\); "
                                         r"replace them with finite numbers \(or NaN to mark them missing\)\."):
        mark_missing([1.0, np.inf])
    with pytest.raises(ValueError, match=r"mark_missing: `data` is empty \(shape \(0,\)\)"):
        mark_missing([])
    with pytest.raises(ValueError, match=r"mark_missing: unknown `how` 'some'\. Expected one of: 'any', 'all'\."):
        mark_missing([1.0], how="some")
    with pytest.raises(ValueError, match=r"restore_missing: `mask` has shape \(2,\), but `values` of shape \(3, 2\) "
                                         r"needs a mask of shape \(3,\)\."):
        restore_missing(np.zeros((3, 2)), np.ones(2, dtype=bool))
