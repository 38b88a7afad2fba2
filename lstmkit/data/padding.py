"""Pad variable-length sequences into one batch with a mask, and mark missing (NaN) steps.

Masks are boolean with ``True`` for a real time step and ``False`` for padding or a missing step,
the convention the recurrent layers take. Nothing is filled silently: every filled position is
``False`` in the returned mask.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstmkit._validation import check_choice, check_int
from lstmkit.data._checks import as_float, check_finite, check_numeric, pandas_info

__all__ = ["Missing", "Padded", "mark_missing", "pad_sequences", "restore_missing", "unpad_sequences"]

_SIDES = ("pre", "post")


class Padded(NamedTuple):
    """Result of :func:`pad_sequences`: ``values (B, T, ...)``, ``mask (B, T)``, ``lengths (B,)``."""

    values: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray


class Missing(NamedTuple):
    """Result of :func:`mark_missing`: the filled ``values`` and the step ``mask`` (True = real)."""

    values: object
    mask: np.ndarray


def pad_sequences(sequences, maxlen: int | None = None, padding: str = "post", truncating: str = "pre",
                  value=0.0, dtype=None) -> Padded:
    """Pad (and truncate) a list of sequences to one length; return the batch, its mask and lengths.

    Args:
        sequences: a list of array-likes, each ``(T_i,)`` or ``(T_i, F...)`` with the same trailing
            shape; lengths may differ and may be 0.
        maxlen: the common length ``T``; ``None`` for the longest sequence.
        padding: ``"post"`` (default, pad at the end: what ``torch.nn.utils.rnn.pack_padded_sequence``
            expects) or ``"pre"`` (pad at the start).
        truncating: for sequences longer than ``maxlen``, ``"pre"`` (default) drops the oldest
            steps and keeps the last ``maxlen``; ``"post"`` keeps the first ``maxlen``.
        value: the padding value.
        dtype: dtype of ``values``; ``None`` for the common dtype of the sequences.

    Returns:
        :class:`Padded` ``(values, mask, lengths)``; ``lengths[i]`` is the number of real steps
        kept, ``mask[i]`` is True exactly on them.

    Shape:
        - sequences[i]: ``(T_i,)`` or ``(T_i, F)``
        - values: ``(B, T)`` or ``(B, T, F)``
        - mask: ``(B, T)`` bool; lengths: ``(B,)`` int64

    >>> padded = pad_sequences([[1, 2, 3], [4]], value=-1)
    >>> padded.values.tolist(), padded.mask.tolist(), padded.lengths.tolist()
    ([[1, 2, 3], [4, -1, -1]], [[True, True, True], [True, False, False]], [3, 1])
    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2, padding="pre").values.tolist()
    [[2, 3], [0, 4]]
    """
    owner = "pad_sequences"
    if isinstance(sequences, np.ndarray) and sequences.dtype != object:
        sequences = list(sequences)
    if not isinstance(sequences, (list, tuple)):
        raise TypeError(f"{owner}: `sequences` must be a list of sequences, got {type(sequences).__name__}.")
    if not sequences:
        raise ValueError(f"{owner}: `sequences` is empty; pass at least one sequence.")
    arrays = []
    for i, seq in enumerate(sequences):
        array = check_numeric(owner, f"sequences[{i}]", seq)
        if array.ndim == 0:
            raise ValueError(f"{owner}: `sequences[{i}]` is a scalar ({array.item()!r}); each sequence "
                             f"must have a time axis, e.g. [{array.item()!r}].")
        arrays.append(array)
    trailing = arrays[0].shape[1:]
    for i, array in enumerate(arrays):
        if array.shape[1:] != trailing:
            raise ValueError(f"{owner}: `sequences[{i}]` has shape {array.shape} but `sequences[0]` has "
                             f"{arrays[0].shape}; all sequences must agree beyond the time axis.")
    maxlen = check_int(owner, "maxlen", maxlen, minimum=1, allow_none=True)
    check_choice(owner, "padding", padding, _SIDES)
    check_choice(owner, "truncating", truncating, _SIDES)
    lengths_in = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    if maxlen is None:
        maxlen = max(int(lengths_in.max()), 1)
    dtype = np.result_type(*arrays) if dtype is None else np.dtype(dtype)
    if dtype.kind in "iub" and isinstance(value, float) and not float(value).is_integer():
        raise ValueError(f"{owner}: `value` {value!r} cannot be stored in the integer dtype {dtype}; pass "
                         f"dtype=float or an integer value.")
    values = np.full((len(arrays), maxlen) + trailing, value, dtype=dtype)  # (B, T, ...)
    mask = np.zeros((len(arrays), maxlen), dtype=bool)
    lengths = np.minimum(lengths_in, maxlen)
    for i, array in enumerate(arrays):
        kept = array[-maxlen:] if truncating == "pre" else array[:maxlen]
        n = kept.shape[0]
        if n == 0:
            continue
        where = slice(0, n) if padding == "post" else slice(maxlen - n, maxlen)
        values[i, where] = kept
        mask[i, where] = True
    return Padded(values, mask, lengths)


def unpad_sequences(values, mask) -> list[np.ndarray]:
    """Undo :func:`pad_sequences`: return each row's real steps (where ``mask`` is True) as a list.

    Shape:
        - values: ``(B, T, ...)``; mask: ``(B, T)`` bool
        - output: list of ``B`` arrays ``(T_i, ...)``

    >>> padded = pad_sequences([[1, 2, 3], [4]])
    >>> [s.tolist() for s in unpad_sequences(padded.values, padded.mask)]
    [[1, 2, 3], [4]]
    """
    owner = "unpad_sequences"
    values = np.asarray(values)
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"{owner}: `mask` must be a boolean array (True = real step), got dtype {mask.dtype}.")
    if values.ndim < 2 or mask.shape != values.shape[:2]:
        raise ValueError(f"{owner}: `mask` must have the shape (B, T) of the first two axes of `values`; "
                         f"got mask {mask.shape} for values {values.shape}.")
    return [row[keep].copy() for row, keep in zip(values, mask)]


def mark_missing(data, fill_value=0.0, how: str = "any") -> Missing:
    """Mark time steps that hold NaN as missing, for masking, and fill those NaN with ``fill_value``.

    Use it after windowing or padding so a recurrent layer skips missing steps instead of reading
    invented numbers. ``restore_missing`` puts NaN back.

    Args:
        data: ``(T,)``, ``(T, F)`` or ``(B, T, F)`` numbers (NumPy or pandas); infinities raise.
        fill_value: what replaces each NaN in ``values``.
        how: ``"any"`` (default) marks a step missing if any of its features is NaN; ``"all"`` only
            if every feature is. A NaN in a step that stays real is still filled, so with ``"all"``
            check ``np.isnan(data)`` yourself if partial rows matter.

    Returns:
        :class:`Missing` ``(values, mask)``: ``values`` has the type and shape of ``data``;
        ``mask`` is True for real steps.

    Shape:
        - data: ``(T,)`` -> mask ``(T,)``; ``(T, F)`` -> mask ``(T,)``; ``(B, T, F)`` -> mask ``(B, T)``

    >>> values, mask = mark_missing([[1.0, 2.0], [np.nan, np.nan], [5.0, 6.0]])
    >>> values.tolist(), mask.tolist()
    ([[1.0, 2.0], [0.0, 0.0], [5.0, 6.0]], [True, False, True])
    """
    owner = "mark_missing"
    info = pandas_info(data)
    array = check_numeric(owner, "data", data)
    if array.ndim not in (1, 2, 3):
        raise ValueError(f"{owner}: `data` must be (T,), (T, F) or (B, T, F), got a {array.ndim}-D "
                         f"array of shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{owner}: `data` is empty (shape {array.shape}); pass at least one time step.")
    check_choice(owner, "how", how, ("any", "all"))
    array = as_float(array)
    check_finite(owner, "data", array, info, allow_nan=True)
    nan = np.isnan(array)
    if array.ndim == 1:
        missing = nan
    else:
        missing = nan.any(axis=-1) if how == "any" else nan.all(axis=-1)
    values = np.where(nan, np.asarray(fill_value, dtype=array.dtype), array)
    return Missing(info.wrap(values), ~missing)


def restore_missing(values, mask):
    """Put NaN back on every step where ``mask`` is False: the inverse of :func:`mark_missing`
    for steps that were entirely NaN.

    Shape:
        - values: ``(T,)``, ``(T, F)`` or ``(B, T, F)``; mask: its leading ``(T,)`` or ``(B, T)`` axes

    >>> restore_missing(*mark_missing([1.0, np.nan, 3.0])).tolist()
    [1.0, nan, 3.0]
    """
    owner = "restore_missing"
    info = pandas_info(values)
    array = as_float(check_numeric(owner, "values", values)).copy()
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"{owner}: `mask` must be a boolean array (True = real step), got dtype {mask.dtype}.")
    expected = array.shape if array.ndim == 1 else array.shape[:-1]
    if mask.shape != expected:
        raise ValueError(f"{owner}: `mask` has shape {mask.shape}, but `values` of shape {array.shape} "
                         f"needs a mask of shape {expected}.")
    array[~mask] = np.nan
    return info.wrap(array)
