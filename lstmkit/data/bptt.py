"""Prepare long sequences for truncated back-propagation through time (stateful training).

A long sequence is cut into ``B`` contiguous streams (:func:`batchify`), then each stream into
chunks of ``k`` steps (:func:`bptt_chunks`). Chunk ``c + 1`` of stream ``b`` continues chunk ``c``
of the same stream, so a stateful layer carries its state from one chunk to the next and
back-propagates through ``k`` steps at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstmkit._validation import check_choice, check_int
from lstmkit.data._checks import check_numeric

__all__ = ["Chunks", "batchify", "bptt_chunks", "unchunk"]


def batchify(data, batch_size: int) -> np.ndarray:
    """Cut one long sequence into ``batch_size`` contiguous streams of equal length.

    Stream ``b`` holds steps ``b * L .. (b + 1) * L - 1`` with ``L = T // batch_size``; the last
    ``T % batch_size`` steps are dropped.

    Shape:
        - data: ``(T,)`` or ``(T, F)``
        - output: ``(batch_size, L)`` or ``(batch_size, L, F)``

    >>> batchify(np.arange(7), 2).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    owner = "batchify"
    array = check_numeric(owner, "data", data)
    if array.ndim not in (1, 2):
        raise ValueError(f"{owner}: `data` must be 1-D (time,) or 2-D (time, features), got shape {array.shape}.")
    batch_size = check_int(owner, "batch_size", batch_size, minimum=1)
    steps = array.shape[0] // batch_size
    if steps == 0:
        raise ValueError(f"{owner}: `data` has {array.shape[0]} time steps, fewer than `batch_size`="
                         f"{batch_size}; use a smaller batch size.")
    return np.array(array[:steps * batch_size].reshape((batch_size, steps) + array.shape[1:]))


class Chunks(NamedTuple):
    """Result of :func:`bptt_chunks`, each with a leading chunk axis ``C``.

    ``x (C, B, k, ...)``, ``y (C, B, k, ...)`` or None, ``mask (C, B, k)`` bool (False on padding).
    Iterate ``for xc, yc, mc in zip(*chunks)`` when ``y`` is given.
    """

    x: np.ndarray
    y: np.ndarray | None
    mask: np.ndarray


def bptt_chunks(x, k: int, y=None, remainder: str = "pad", value=0.0) -> Chunks:
    """Split batch-first sequences along time into consecutive chunks of ``k`` steps.

    Args:
        x: ``(B, T, ...)`` inputs (e.g. from :func:`batchify`).
        k: steps per chunk: the truncation length of BPTT.
        y: optional targets ``(B, T, ...)`` aligned with ``x`` step for step; they are chunked the
            same way.
        remainder: when ``k`` does not divide ``T``: ``"pad"`` the last chunk with ``value`` (its
            mask is False there) or ``"drop"`` the incomplete last chunk.
        value: padding value.

    Shape:
        - x: ``(B, T, ...)``; y: ``(B, T, ...)``
        - Chunks.x: ``(C, B, k, ...)`` with ``C = ceil(T / k)`` (pad) or ``T // k`` (drop)
        - Chunks.mask: ``(C, B, k)``

    >>> chunks = bptt_chunks(np.arange(10).reshape(2, 5), k=2)
    >>> chunks.x[0].tolist(), chunks.x[2].tolist(), chunks.mask[2].tolist()
    ([[0, 1], [5, 6]], [[4, 0], [9, 0]], [[True, False], [True, False]])
    """
    owner = "bptt_chunks"
    xa = check_numeric(owner, "x", x)
    if xa.ndim < 2:
        raise ValueError(f"{owner}: `x` must be batch-first (B, T, ...), got shape {xa.shape}; cut a single "
                         f"long sequence into streams with lstmkit.data.batchify first.")
    if xa.shape[1] == 0:
        raise ValueError(f"{owner}: `x` has no time steps (shape {xa.shape}).")
    k = check_int(owner, "k", k, minimum=1)
    check_choice(owner, "remainder", remainder, ("pad", "drop"))
    ya = None
    if y is not None:
        ya = check_numeric(owner, "y", y)
        if ya.shape[:2] != xa.shape[:2]:
            raise ValueError(f"{owner}: `y` has shape {ya.shape} but `x` has {xa.shape}; their (B, T) "
                             f"axes must match step for step.")
    steps = xa.shape[1]
    if remainder == "drop":
        n_chunks = steps // k
        if n_chunks == 0:
            raise ValueError(f"{owner}: `x` has {steps} time steps, fewer than `k`={k}, so remainder='drop' "
                             f"leaves nothing; use a smaller k or remainder='pad'.")
    else:
        n_chunks = -(-steps // k)
    total = n_chunks * k
    mask = np.zeros((xa.shape[0], total), dtype=bool)
    mask[:, :min(steps, total)] = True
    return Chunks(_chunk(xa, k, n_chunks, value),
                  None if ya is None else _chunk(ya, k, n_chunks, value),
                  _chunk(mask, k, n_chunks, False))


def _chunk(array: np.ndarray, k: int, n_chunks: int, value) -> np.ndarray:
    total = n_chunks * k
    batch, steps = array.shape[:2]
    out = np.full((batch, total) + array.shape[2:], value, dtype=array.dtype)
    keep = min(steps, total)
    out[:, :keep] = array[:, :keep]
    out = out.reshape((batch, n_chunks, k) + array.shape[2:])  # (B, C, k, ...)
    return np.ascontiguousarray(np.moveaxis(out, 1, 0))  # (C, B, k, ...)


def unchunk(chunks, mask=None) -> np.ndarray:
    """Join chunks back into ``(B, T, ...)``, dropping padded steps: the inverse of :func:`bptt_chunks`.

    Shape:
        - chunks: ``(C, B, k, ...)``; mask: ``(C, B, k)`` bool or None (keep every step)
        - output: ``(B, T, ...)``

    >>> c = bptt_chunks(np.arange(10).reshape(2, 5), k=2)
    >>> unchunk(c.x, c.mask).tolist()
    [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    """
    owner = "unchunk"
    array = np.asarray(chunks)
    if array.ndim < 3:
        raise ValueError(f"{owner}: `chunks` must be (C, B, k, ...), got shape {array.shape}.")
    n_chunks, batch, k = array.shape[:3]
    joined = np.moveaxis(array, 0, 1).reshape((batch, n_chunks * k) + array.shape[3:])  # (B, C*k, ...)
    if mask is None:
        return np.array(joined)
    mask = np.asarray(mask)
    if mask.shape != array.shape[:3] or mask.dtype != bool:
        raise ValueError(f"{owner}: `mask` must be a boolean array of shape {array.shape[:3]}, got "
                         f"{mask.dtype} {mask.shape}.")
    flat = np.moveaxis(mask, 0, 1).reshape(batch, n_chunks * k)
    steps = int(flat[0].sum())
    if not (flat[:, :steps].all() and not flat[:, steps:].any()):
        raise ValueError(f"{owner}: `mask` must mark the same leading steps of every stream as real (as "
                         f"bptt_chunks makes it); got a mask with gaps or ragged rows.")
    return np.array(joined[:, :steps])
