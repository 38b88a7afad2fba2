"""Property-based round trips (hypothesis): every transform followed by its inverse gives the input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lstmkit.data import (CharVocabulary, Differencer, IntegerEncoder, MinMaxScaler, OneHotEncoder,
                          Pipeline, StandardScaler, bptt_chunks, difference, inverse_difference,
                          mark_missing, pad_sequences, restore_missing, time_split, to_3d,
                          to_supervised, unchunk, unpad_sequences, walk_forward)

PROPERTY = settings(max_examples=40, deadline=None)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
integers_as_floats = st.integers(min_value=-2**40, max_value=2**40).map(float)
# Fixed-point values on a power-of-two grid (multiples of 1/1024): differences are exact.
dyadic = st.integers(min_value=-2**40, max_value=2**40).map(lambda k: k / 1024.0)


def series(elements, min_steps=1, max_steps=40, max_features=4):
    shapes = st.tuples(st.integers(min_steps, max_steps), st.integers(1, max_features))
    return shapes.flatmap(lambda shape: arrays(np.float64, shape, elements=elements))


@PROPERTY
@given(data=series(finite, min_steps=2), lookback=st.integers(1, 6), horizon=st.integers(1, 4),
       stride=st.integers(1, 3))
def test_windows_are_the_rows_they_claim(data, lookback, horizon, stride):
    n_steps = data.shape[0]
    if n_steps < lookback + horizon:
        with pytest.raises(ValueError, match="fewer than `lookback` \\+ `horizon`"):
            to_supervised(data, lookback, horizon, stride)
        return
    windows = to_supervised(data, lookback, horizon, stride)
    X, y = windows
    n = (n_steps - lookback - horizon) // stride + 1
    assert X.shape == (n, lookback, data.shape[1])
    assert y.shape == ((n, horizon) if data.shape[1] == 1 else (n, horizon, data.shape[1]))
    y3 = y.reshape(n, horizon, -1)
    for i in range(n):
        start = i * stride
        assert np.array_equal(X[i], data[start:start + lookback])
        assert np.array_equal(y3[i], data[start + lookback:start + lookback + horizon])
    # Inverse: with stride 1 the first window and the first target of each window rebuild the rows.
    if stride == 1:
        rebuilt = np.concatenate([X[0], y3[:, 0]] + ([y3[-1, 1:]] if horizon > 1 else []))
        assert np.array_equal(rebuilt, data)


@PROPERTY
@given(data=series(finite), timesteps=st.integers(1, 5))
def test_to_3d_round_trip(data, timesteps):
    n_rows = data.shape[0] - data.shape[0] % timesteps
    if n_rows == 0:
        return
    cut = data[:n_rows]
    out = to_3d(cut, timesteps)
    assert out.shape == (n_rows // timesteps, timesteps, data.shape[1])
    assert np.array_equal(out.reshape(-1, data.shape[1]), cut)


@PROPERTY
@given(data=series(st.one_of(integers_as_floats, dyadic), min_steps=2), lag=st.integers(1, 13))
def test_difference_inverse_is_bit_exact_when_differences_are_exact(data, lag):
    if data.shape[0] <= lag:
        return
    rebuilt = inverse_difference(difference(data, lag), history=data[:lag], lag=lag)
    assert np.array_equal(rebuilt, data[lag:])
    diff = Differencer(lag).fit(data)
    assert np.array_equal(diff.inverse_transform(diff.transform(data)), data)


@PROPERTY
@given(data=series(finite, min_steps=2), lag=st.integers(1, 13))
def test_difference_inverse_within_rounding_for_any_floats(data, lag):
    if data.shape[0] <= lag:
        return
    rebuilt = inverse_difference(difference(data, lag), history=data[:lag], lag=lag)
    # Each step may round once; errors add up along the series (module docstring).
    steps = -(-data.shape[0] // lag)
    tolerance = 4 * steps * np.finfo(np.float64).eps * np.abs(data).max()
    assert np.allclose(rebuilt, data[lag:], rtol=0, atol=tolerance)


@PROPERTY
@given(data=st.tuples(st.integers(1, 4), st.integers(1, 30), st.integers(1, 3)).flatmap(
           lambda shape: arrays(np.float64, shape, elements=finite)),
       low=st.floats(-5, 5), width=st.floats(0.5, 10))
def test_min_max_round_trip_and_range(data, low, width):
    scaler = MinMaxScaler((low, low + width)).fit(data)
    out = scaler.transform(data)
    assert out.shape == data.shape
    assert out.min() >= low - 1e-9 and out.max() <= low + width + 1e-9
    scale = max(1.0, np.abs(data).max())
    assert np.allclose(scaler.inverse_transform(out), data, rtol=1e-9, atol=1e-9 * scale)


@PROPERTY
@given(data=series(finite, min_steps=2))
def test_standard_round_trip(data):
    scaler = StandardScaler().fit(data)
    out = scaler.transform(data)
    assert np.isfinite(out).all()
    scale = max(1.0, np.abs(data).max())
    assert np.allclose(scaler.inverse_transform(out), data, rtol=1e-9, atol=1e-9 * scale)


@PROPERTY
@given(lengths=st.lists(st.integers(0, 12), min_size=1, max_size=6), features=st.integers(1, 3),
       padding=st.sampled_from(["pre", "post"]), seed=st.integers(0, 2**32 - 1))
def test_pad_unpad_round_trip(lengths, features, padding, seed):
    rng = np.random.default_rng(seed)
    seqs = [rng.normal(size=(n, features)) for n in lengths]
    padded = pad_sequences(seqs, padding=padding, value=np.nan)
    assert padded.values.shape == (len(seqs), max(max(lengths), 1), features)
    assert padded.lengths.tolist() == lengths
    assert np.array_equal(padded.mask.sum(axis=1), padded.lengths)
    back = unpad_sequences(padded.values, padded.mask)
    assert all(np.array_equal(a, b) for a, b in zip(back, seqs))


@PROPERTY
@given(text=st.text(min_size=1, max_size=60))
def test_char_vocabulary_round_trip(text):
    vocab = CharVocabulary().fit(text)
    assert vocab.decode(vocab.encode(text)) == text
    onehot = OneHotEncoder().fit(text)
    assert "".join(onehot.decode(onehot.encode(text))) == text


@PROPERTY
@given(symbols=st.lists(st.integers(-5, 5), min_size=1, max_size=40), unknown=st.sampled_from(["error", "reserve"]))
def test_integer_encoder_round_trip(symbols, unknown):
    enc = IntegerEncoder(unknown=unknown).fit(symbols)
    codes = enc.encode(symbols)
    assert codes.min() >= enc.size - len(enc.alphabet_)
    assert enc.decode(codes) == symbols


@PROPERTY
@given(data=series(finite), missing=st.lists(st.booleans(), min_size=40, max_size=40))
def test_mark_restore_round_trip(data, missing):
    data = data.copy()
    rows = np.array(missing[:data.shape[0]])
    data[rows] = np.nan
    values, mask = mark_missing(data)
    assert np.array_equal(mask, ~rows)
    assert not np.isnan(values).any()
    assert np.array_equal(restore_missing(values, mask), data, equal_nan=True)


@PROPERTY
@given(batch=st.integers(1, 3), steps=st.integers(1, 20), k=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_bptt_round_trip(batch, steps, k, seed):
    x = np.random.default_rng(seed).normal(size=(batch, steps, 2))
    chunks = bptt_chunks(x, k, y=x * 2)
    assert chunks.x.shape[:3] == (-(-steps // k), batch, k)
    assert np.array_equal(unchunk(chunks.x, chunks.mask), x)
    assert np.array_equal(unchunk(chunks.y, chunks.mask), x * 2)


@PROPERTY
@given(n=st.integers(3, 60), parts=st.integers(2, 3))
def test_time_split_parts_concatenate_back(n, parts):
    counts = [n // parts] * (parts - 1)
    counts.append(n - sum(counts))
    if min(counts) < 1:
        return
    pieces = time_split(np.arange(n), sizes=counts)
    assert [len(p) for p in pieces] == counts
    assert np.array_equal(np.concatenate(pieces), np.arange(n))


@PROPERTY
@given(n=st.integers(2, 60), initial=st.integers(1, 20), test_size=st.integers(1, 5), step=st.integers(1, 5),
       window=st.sampled_from(["expanding", "sliding"]))
def test_walk_forward_folds_are_ordered(n, initial, test_size, step, window):
    if n < initial + test_size:
        return
    folds = walk_forward(n, initial, test_size, step, window)
    assert folds[0].test[0] == initial
    for j, (train, test) in enumerate(folds):
        assert train.max() == test.min() - 1 and test.max() < n
        assert len(test) == test_size
        assert len(train) == (initial + j * step if window == "expanding" else initial)


@PROPERTY
@given(data=series(integers_as_floats, min_steps=12, max_steps=40, max_features=2),
       lag=st.integers(1, 3), horizon=st.integers(1, 3))
def test_pipeline_round_trip(data, lag, horizon):
    pipe = Pipeline([Differencer(lag), StandardScaler()], lookback=3, horizon=horizon)
    windows = pipe.fit_transform(data)
    truth = to_supervised(data, lag + 3, horizon).y
    scale = max(1.0, np.abs(data).max())
    assert np.allclose(pipe.inverse_transform_y(windows.y, windows), truth, rtol=0, atol=1e-9 * scale)
