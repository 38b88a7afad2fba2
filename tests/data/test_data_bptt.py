"""Truncated-BPTT preparation: streams, chunks of k steps with matching targets, and the inverse."""

import numpy as np
import pytest

from lstmkit.data import batchify, bptt_chunks, unchunk


def test_batchify_contiguous_streams():
    streams = batchify(np.arange(10), batch_size=3)
    assert streams.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert batchify(np.arange(8.0).reshape(4, 2), 2).shape == (2, 2, 2)


def test_chunks_continue_each_stream_with_matching_targets():
    text = np.arange(13)
    x, y = text[:-1], text[1:]  # next-step targets
    xs, ys = batchify(x, 2), batchify(y, 2)  # (2, 6) each
    chunks = bptt_chunks(xs, k=3, y=ys)
    assert chunks.x.shape == (2, 2, 3) and chunks.y.shape == (2, 2, 3)
    assert chunks.x[0].tolist() == [[0, 1, 2], [6, 7, 8]]
    assert chunks.x[1].tolist() == [[3, 4, 5], [9, 10, 11]]  # chunk 1 continues chunk 0, row for row
    assert np.array_equal(chunks.y, chunks.x + 1)
    assert chunks.mask.all()


def test_remainder_pad_and_drop():
    x = np.arange(14.0).reshape(2, 7, 1)
    padded = bptt_chunks(x, k=3)
    assert padded.x.shape == (3, 2, 3, 1)
    assert padded.mask[2].tolist() == [[True, False, False]] * 2
    assert padded.x[2, 0, :, 0].tolist() == [6, 0, 0]
    dropped = bptt_chunks(x, k=3, remainder="drop")
    assert dropped.x.shape == (2, 2, 3, 1) and dropped.mask.all()


def test_unchunk_inverts_chunking():
    x = np.random.default_rng(0).normal(size=(3, 10, 2))
    for k in (1, 3, 4, 10, 12):
        chunks = bptt_chunks(x, k=k)
        assert np.array_equal(unchunk(chunks.x, chunks.mask), x)


def test_errors():
    with pytest.raises(ValueError, match=r"batchify: `data` has 3 time steps, fewer than `batch_size`=4; use a "
                                         r"smaller batch size\."):
        batchify(np.arange(3), 4)
    with pytest.raises(ValueError, match=r"bptt_chunks: `x` must be batch-first \(B, T, \.\.\.\), got shape \(5,\); "
                                         r"cut a single long sequence into streams with lstmkit\.data\.batchify"):
        bptt_chunks(np.arange(5), k=2)
    with pytest.raises(ValueError, match=r"bptt_chunks: `y` has shape \(2, 4\) but `x` has \(2, 5\); their \(B, T\) "
                                         r"axes must match step for step\."):
        bptt_chunks(np.zeros((2, 5)), k=2, y=np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"bptt_chunks: `x` has 2 time steps, fewer than `k`=3, so remainder='drop' "
                                         r"leaves nothing"):
        bptt_chunks(np.zeros((1, 2)), k=3, remainder="drop")
    with pytest.raises(ValueError, match=r"bptt_chunks: unknown `remainder` 'keep'\. Expected one of: 'pad', "
                                         r"'drop'\."):
        bptt_chunks(np.zeros((1, 2)), k=1, remainder="keep")
    with pytest.raises(ValueError, match=r"unchunk: `mask` must be a boolean array of shape \(1, 1, 2\)"):
        unchunk(np.zeros((1, 1, 2)), np.ones((1, 1, 3), dtype=bool))
