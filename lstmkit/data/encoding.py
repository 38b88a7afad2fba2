"""Integer and one-hot encoding of symbol sequences, and a character vocabulary for text.

An encoder learns an alphabet (``fit``) or is given one, then maps symbols to indices
(``encode``) and back (``decode``). Symbols not in the alphabet either raise or, with
``unknown="reserve"``, map to index 0, which is kept for them; known symbols then start at 1.
"""

from __future__ import annotations

import numpy as np

from lstmkit._validation import check_choice
from lstmkit.errors import NotFittedError

__all__ = ["CharVocabulary", "IntegerEncoder", "OneHotEncoder"]

_UNKNOWN_CHOICES = ("error", "reserve")


def _ordered_alphabet(symbols: list) -> tuple:
    unique = list(dict.fromkeys(symbols))  # first-seen order, duplicates dropped
    try:
        return tuple(sorted(unique))
    except TypeError:  # symbols of mixed, unorderable types keep first-seen order
        return tuple(unique)


def _as_symbols(owner: str, name: str, sequence) -> list:
    if isinstance(sequence, (str, bytes)):
        return list(sequence)
    if isinstance(sequence, np.ndarray):
        if sequence.ndim != 1:
            raise ValueError(f"{owner}: `{name}` must be one sequence (1-D), got an array of shape "
                             f"{sequence.shape}; encode each sequence separately.")
        return sequence.tolist()
    try:
        return list(sequence)
    except TypeError:
        raise TypeError(f"{owner}: `{name}` must be a sequence of symbols (a string, list or 1-D "
                        f"array), got {type(sequence).__name__}.") from None


class IntegerEncoder:
    """Map the symbols of a sequence to integer indices and back.

    Args:
        alphabet: the symbols, in index order; ``None`` to learn them with :meth:`fit` (sorted
            when the symbols can be sorted, else in order of first appearance).
        unknown: ``"error"`` to raise on a symbol outside the alphabet, ``"reserve"`` to map it
            to index 0, which is then kept for unknown symbols (known symbols start at 1).
        unknown_token: what :meth:`decode` returns for index 0 when ``unknown="reserve"``.

    Shape:
        - encode: sequence of ``T`` symbols -> ``(T,)`` int64
        - decode: ``(T,)`` ints -> list of ``T`` symbols

    >>> enc = IntegerEncoder().fit("banana")
    >>> enc.alphabet_, enc.encode("nab").tolist(), enc.decode([2, 0, 1])
    (('a', 'b', 'n'), [2, 0, 1], ['n', 'a', 'b'])
    >>> IntegerEncoder(unknown="reserve").fit("ab").encode("abz").tolist()
    [1, 2, 0]
    """

    def __init__(self, alphabet=None, unknown: str = "error", unknown_token="<unk>"):
        self.unknown = check_choice(type(self).__name__, "unknown", unknown, _UNKNOWN_CHOICES)
        self.unknown_token = unknown_token
        self.alphabet = None if alphabet is None else tuple(alphabet)
        if self.alphabet is not None:
            self._set_alphabet(self.alphabet)

    # --- fitting -------------------------------------------------------------------------------
    def _set_alphabet(self, alphabet: tuple) -> None:
        owner = type(self).__name__
        if not alphabet:
            raise ValueError(f"{owner}: the alphabet is empty; pass at least one symbol.")
        try:
            index = {symbol: i for i, symbol in enumerate(alphabet)}
        except TypeError as exc:
            raise TypeError(f"{owner}: symbols must be hashable ({exc}).") from None
        if len(index) != len(alphabet):
            raise ValueError(f"{owner}: `alphabet` lists a symbol more than once: {alphabet!r}.")
        self.alphabet_ = alphabet
        self.offset_ = 1 if self.unknown == "reserve" else 0
        self.index_ = {symbol: i + self.offset_ for symbol, i in index.items()}

    def fit(self, *sequences):
        """Learn the alphabet from one or more sequences; returns ``self``."""
        owner = type(self).__name__
        if not sequences:
            raise ValueError(f"{owner}.fit: pass at least one sequence, e.g. fit('some text').")
        symbols = []
        for k, sequence in enumerate(sequences):
            symbols.extend(_as_symbols(f"{owner}.fit", f"sequences[{k}]", sequence))
        if not symbols:
            raise ValueError(f"{owner}.fit: the sequences are empty; there is no alphabet to learn.")
        self._set_alphabet(_ordered_alphabet(symbols))
        return self

    def _check_fitted(self, method: str) -> None:
        if not hasattr(self, "alphabet_"):
            raise NotFittedError(f"{type(self).__name__}.{method}: the encoder has no alphabet yet; "
                                 f"call fit(sequence) first or pass `alphabet` to the constructor.")

    @property
    def size(self) -> int:
        """Number of distinct indices: the alphabet, plus 1 when index 0 is reserved."""
        self._check_fitted("size")
        return len(self.alphabet_) + self.offset_

    def __len__(self) -> int:
        return self.size

    # --- encoding ------------------------------------------------------------------------------
    def encode(self, sequence) -> np.ndarray:
        """Return the indices of ``sequence``'s symbols as an int64 array ``(T,)``."""
        self._check_fitted("encode")
        owner = f"{type(self).__name__}.encode"
        symbols = _as_symbols(owner, "sequence", sequence)
        out = np.empty(len(symbols), dtype=np.int64)
        for t, symbol in enumerate(symbols):
            try:
                out[t] = self.index_[symbol]
            except (KeyError, TypeError):
                if self.unknown == "reserve":
                    out[t] = 0
                    continue
                raise ValueError(
                    f"{owner}: symbol {symbol!r} at position {t} of `sequence` is not in the fitted "
                    f"alphabet of {len(self.alphabet_)} symbols; refit including it, or create "
                    f"the encoder with unknown='reserve' to map unknown symbols to index 0.") from None
        return out

    def decode(self, indices) -> list:
        """Return the symbols for ``indices`` (1-D ints) as a list."""
        self._check_fitted("decode")
        owner = f"{type(self).__name__}.decode"
        array = np.asarray(indices)
        if array.ndim != 1:
            raise ValueError(f"{owner}: `indices` must be 1-D, got shape {array.shape}.")
        if array.size and array.dtype.kind not in "iu":
            if array.dtype.kind != "f" or not np.all(array == np.round(array)):
                raise TypeError(f"{owner}: `indices` must be integers, got dtype {array.dtype}.")
            array = array.astype(np.int64)
        bad = (array < 0) | (array >= self.size)
        if bad.any():
            t = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{owner}: index {int(array[t])} at position {t} of `indices` is "
                             f"outside 0..{self.size - 1}, the encoder's {self.size} indices.")
        table = ((self.unknown_token,) if self.offset_ else ()) + self.alphabet_
        return [table[i] for i in array.tolist()]

    # --- config round trip ---------------------------------------------------------------------
    def get_config(self) -> dict:
        """A JSON-safe dict (when the symbols are JSON-safe) that :meth:`from_config` rebuilds."""
        self._check_fitted("get_config")
        return {"alphabet": list(self.alphabet_), "unknown": self.unknown,
                "unknown_token": self.unknown_token}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        size = len(self.alphabet_) if hasattr(self, "alphabet_") else "unfitted"
        return f"{type(self).__name__}(symbols={size}, unknown={self.unknown!r})"


class OneHotEncoder(IntegerEncoder):
    """One-hot encode a symbol sequence; decode one-hot rows or scores by their arg-max.

    Same arguments as :class:`IntegerEncoder`, plus ``dtype`` of the one-hot array
    (float32 by default, what the layers take). With ``unknown="reserve"``, column 0 stands for
    unknown symbols.

    Shape:
        - encode: sequence of ``T`` symbols -> ``(T, V)`` with ``V = size``
        - decode: ``(T, V)`` -> list of ``T`` symbols; ``(B, T, V)`` -> list of ``B`` lists

    >>> enc = OneHotEncoder().fit("abc")
    >>> enc.encode("ca").tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    >>> enc.decode([[0.1, 0.7, 0.2]])
    ['b']
    """

    def __init__(self, alphabet=None, unknown: str = "error", unknown_token="<unk>", dtype=np.float32):
        super().__init__(alphabet, unknown, unknown_token)
        self.dtype = np.dtype(dtype)

    def encode(self, sequence) -> np.ndarray:
        indices = super().encode(sequence)
        out = np.zeros((indices.size, self.size), dtype=self.dtype)  # (T, V)
        out[np.arange(indices.size), indices] = 1
        return out

    def decode(self, onehot) -> list:
        self._check_fitted("decode")
        owner = f"{type(self).__name__}.decode"
        array = np.asarray(onehot)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{owner}: `onehot` must hold numbers, got dtype {array.dtype}.")
        if array.ndim not in (2, 3) or array.shape[-1] != self.size:
            raise ValueError(f"{owner}: `onehot` must have shape (T, {self.size}) or "
                             f"(B, T, {self.size}), got {array.shape}.")
        if array.ndim == 3:
            return [IntegerEncoder.decode(self, row.argmax(-1)) for row in array]
        return IntegerEncoder.decode(self, array.argmax(-1))

    def get_config(self) -> dict:
        return {**super().get_config(), "dtype": self.dtype.name}


class CharVocabulary(IntegerEncoder):
    """A character vocabulary for text: ``encode`` a string to indices, ``decode`` back to a string.

    Same arguments as :class:`IntegerEncoder`; ``unknown_token`` defaults to ``"?"`` so decoded
    text stays a plain string.

    Shape:
        - encode: string of ``T`` characters -> ``(T,)`` int64
        - decode: ``(T,)`` ints -> string of ``T`` characters (longer where ``unknown_token`` is)

    >>> vocab = CharVocabulary().fit("hello world")
    >>> len(vocab), vocab.decode(vocab.encode("hold"))
    (8, 'hold')
    """

    def __init__(self, alphabet=None, unknown: str = "error", unknown_token: str = "?"):
        super().__init__(alphabet, unknown, unknown_token)

    def fit(self, *texts):
        for k, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"CharVocabulary.fit: `texts[{k}]` must be a string, got "
                                f"{type(text).__name__}.")
        return super().fit(*texts)

    def decode(self, indices) -> str:
        return "".join(super().decode(indices))
