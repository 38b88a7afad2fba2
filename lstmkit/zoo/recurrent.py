"""Builders for the plain recurrent architectures: vanilla and stacked LSTMs, bidirectional
taggers, and sequence classifiers with masking.

Each builder returns an ordinary, compiled :class:`~lstmkit.Sequential`: print
``model.summary()``, change ``model.layers``, or ``compile`` it again with other settings.
"""

from __future__ import annotations

from lstmkit._validation import check_choice, check_float, check_int
from lstmkit.layers import (LSTM, Bidirectional, Dense, Dropout, Embedding, GlobalAveragePooling1D,
                            GlobalMaxPooling1D, Masking)
from lstmkit.models import Sequential

_OUTPUTS = {None: "mse", "linear": "mse", "sigmoid": "binary_crossentropy",
            "softmax": "sparse_categorical_crossentropy"}


def _units(owner: str, units) -> tuple[int, ...]:
    if isinstance(units, int) and not isinstance(units, bool):
        units = (units,)
    if not isinstance(units, (tuple, list)) or not units:
        raise TypeError(f"{owner}: `units` must be an integer or a non-empty list of integers (one per layer), "
                        f"got {units!r}.")
    return tuple(check_int(owner, "units", u, minimum=1) for u in units)


def _compile(model: Sequential, activation: str | None, learning_rate: float, metrics=None) -> Sequential:
    loss = _OUTPUTS[activation]
    if metrics is None:
        metrics = ["accuracy"] if activation in ("sigmoid", "softmax") else ["mae"]
    model.compile(optimizer="adam", loss=loss, metrics=metrics, learning_rate=learning_rate)
    return model


def stacked_lstm(n_features: int, n_outputs: int, units=(64, 32), *, timesteps: int | None = None,
                 activation: str | None = None, dropout: float = 0.0, variant: str = "vanilla",
                 learning_rate: float = 0.005) -> Sequential:
    """LSTM layers stacked with ``return_sequences`` between them, then ``Dense(n_outputs)``.

    Args:
        n_features: F, features per time step.
        n_outputs: values predicted per sequence (e.g. the forecast horizon, or classes).
        units: units per LSTM layer, first to last; an integer gives the vanilla (one-layer) LSTM.
        timesteps: fix the input length (None: any length).
        activation: the output layer's: None (regression, loss ``mse``), ``"sigmoid"``
            (``binary_crossentropy``) or ``"softmax"`` (``sparse_categorical_crossentropy``).
        dropout: a ``Dropout`` layer after each LSTM layer, at this rate.
        variant: the LSTM cell variant (see :mod:`lstmkit.cells`).
        learning_rate: Adam's.

    >>> import numpy as np
    >>> model = stacked_lstm(n_features=3, n_outputs=2, units=(16, 8))
    >>> [type(layer).__name__ for layer in model.layers]
    ['LSTM', 'LSTM', 'Dense']
    >>> model.predict(np.zeros((4, 10, 3), dtype="float32")).shape
    (4, 2)
    """
    n_features = check_int("stacked_lstm", "n_features", n_features, minimum=1)
    n_outputs = check_int("stacked_lstm", "n_outputs", n_outputs, minimum=1)
    units = _units("stacked_lstm", units)
    check_choice("stacked_lstm", "activation", activation, tuple(_OUTPUTS))
    dropout = check_float("stacked_lstm", "dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
    layers = []
    for k, u in enumerate(units):
        layers.append(LSTM(u, variant, return_sequences=k < len(units) - 1))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(n_outputs, activation=activation))
    return _compile(Sequential(layers, input_shape=(timesteps, n_features)), activation, learning_rate)


def vanilla_lstm(n_features: int, n_outputs: int, units: int = 50, **options) -> Sequential:
    """One LSTM layer and a ``Dense`` output: :func:`stacked_lstm` with a single layer.

    >>> [type(layer).__name__ for layer in vanilla_lstm(1, 1).layers]
    ['LSTM', 'Dense']
    """
    if not isinstance(units, int) or isinstance(units, bool):
        raise TypeError(f"vanilla_lstm: `units` must be an integer, got {units!r}. For several layers use "
                        "stacked_lstm(units=(64, 32)).")
    return stacked_lstm(n_features, n_outputs, units, **options)


def bidirectional_lstm(n_features: int, n_outputs: int = 1, units: int = 32, *, per_step: bool = True,
                       activation: str = "sigmoid", merge_mode: str = "concat", bidirectional: bool = True,
                       learning_rate: float = 0.01) -> Sequential:
    """A bidirectional LSTM that tags every step (``per_step``) or classifies whole sequences.

    ``bidirectional=False`` builds the one-directional twin (the same layers reading forwards
    only), for comparison.

    Args:
        n_features: F.
        n_outputs: outputs per step (or per sequence): 1 for a sigmoid tag, C for a softmax.
        units: units per direction.
        per_step: output ``(B, T, n_outputs)`` (tagging); False: ``(B, n_outputs)``.
        activation: ``"sigmoid"``, ``"softmax"`` or None.
        merge_mode: how the directions combine (see :class:`~lstmkit.layers.Bidirectional`).

    >>> import numpy as np
    >>> model = bidirectional_lstm(n_features=1)
    >>> model.predict(np.zeros((2, 7, 1), dtype="float32")).shape
    (2, 7, 1)
    """
    n_features = check_int("bidirectional_lstm", "n_features", n_features, minimum=1)
    n_outputs = check_int("bidirectional_lstm", "n_outputs", n_outputs, minimum=1)
    units = check_int("bidirectional_lstm", "units", units, minimum=1)
    check_choice("bidirectional_lstm", "activation", activation, tuple(_OUTPUTS))
    recurrent = LSTM(units, return_sequences=bool(per_step))
    layer = Bidirectional(recurrent, merge_mode=merge_mode) if bidirectional else recurrent
    model = Sequential([layer, Dense(n_outputs, activation=activation)], input_shape=(None, n_features))
    return _compile(model, activation, learning_rate)


def sequence_classifier(n_classes: int, *, n_features: int | None = None, vocab_size: int | None = None,
                        embed_dim: int = 32, units: int = 64, bidirectional: bool = False, pooling: str = "last",
                        dropout: float = 0.0, mask_value: float | None = 0.0,
                        learning_rate: float = 0.005) -> Sequential:
    """Sequences of numbers or of token ids -> LSTM -> softmax over ``n_classes``.

    Variable lengths are padded and masked: numeric input goes through ``Masking(mask_value)``
    (pad with that value, e.g. ``lstmkit.data.pad_sequences``); token ids go through
    ``Embedding(vocab_size, embed_dim, mask_zero=True)`` (pad with id 0, real ids from 1). Padded
    steps leave the LSTM's state unchanged, so the padding does not change the prediction.

    Args:
        n_classes: C; targets are class ids ``0 .. C - 1`` (``sparse_categorical_crossentropy``).
        n_features: F for numeric input ``(B, T, F)``; or
        vocab_size: for token ids ``(B, T)`` (counting the padding id 0).
        units: LSTM units (per direction with ``bidirectional``).
        dropout: a ``Dropout`` before the output layer.
        pooling: what the output layer reads: ``"last"``, the LSTM's final output; ``"mean"`` or
            ``"max"``, the mean or maximum of its outputs over the real steps (every step then
            gets gradient directly, which helps on long sequences and small data sets).
        mask_value: the padding value of numeric input; None for no masking.

    >>> import numpy as np
    >>> model = sequence_classifier(3, vocab_size=20)
    >>> ids = np.array([[4, 7, 0, 0], [5, 1, 9, 2]])       # the first sequence is padded with 0
    >>> model.predict(ids).shape
    (2, 3)
    """
    n_classes = check_int("sequence_classifier", "n_classes", n_classes, minimum=2)
    if (n_features is None) == (vocab_size is None):
        raise ValueError("sequence_classifier: give exactly one of `n_features` (numeric input, shape (batch, time, "
                         "features)) and `vocab_size` (token ids, shape (batch, time)), got "
                         f"n_features={n_features!r} and vocab_size={vocab_size!r}.")
    units = check_int("sequence_classifier", "units", units, minimum=1)
    dropout = check_float("sequence_classifier", "dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
    if vocab_size is not None:
        vocab_size = check_int("sequence_classifier", "vocab_size", vocab_size, minimum=2)
        layers = [Embedding(vocab_size, check_int("sequence_classifier", "embed_dim", embed_dim, minimum=1),
                            mask_zero=True)]
        input_shape = (None,)
    else:
        n_features = check_int("sequence_classifier", "n_features", n_features, minimum=1)
        layers = [] if mask_value is None else [Masking(mask_value)]
        input_shape = (None, n_features)
    pooling = check_choice("sequence_classifier", "pooling", pooling, ("last", "mean", "max"))
    recurrent = LSTM(units, return_sequences=pooling != "last")
    layers.append(Bidirectional(recurrent) if bidirectional else recurrent)
    if pooling != "last":
        layers.append(GlobalAveragePooling1D() if pooling == "mean" else GlobalMaxPooling1D())
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(n_classes, activation="softmax"))
    return _compile(Sequential(layers, input_shape=input_shape), "softmax", learning_rate)
