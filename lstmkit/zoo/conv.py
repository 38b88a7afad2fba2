"""Builders for convolutional front ends feeding an LSTM.

- :func:`cnn_lstm`: a CNN applied to every time step (``TimeDistributed``), for sequences of
  images ``(B, T, H, W, C)`` or of sub-sequences ``(B, T, steps, F)``; the LSTM reads the
  per-step features.
- :func:`conv1d_lstm`: ``Conv1D`` + ``MaxPooling1D`` shorten a long series before the LSTM reads it,
  so the recurrence runs over ``T / pool_size`` steps of learned local features.
"""

from __future__ import annotations

from lstmkit._validation import check_choice, check_int
from lstmkit.layers import (LSTM, Conv1D, Conv2D, Dense, Flatten, MaxPooling1D, MaxPooling2D,
                            TimeDistributed)
from lstmkit.models import Sequential
from lstmkit.zoo.recurrent import _OUTPUTS, _compile


def cnn_lstm(frame_shape, n_outputs: int, *, filters: int = 16, kernel_size: int = 3, pool_size: int = 2,
             units: int = 32, activation: str | None = "softmax", learning_rate: float = 0.005) -> Sequential:
    """``TimeDistributed`` convolution and pooling on each step, then an LSTM and a ``Dense`` output.

    Args:
        frame_shape: the shape of one time step: ``(rows, columns, channels)`` for images
            (``Conv2D``), or ``(steps, features)`` for sub-sequences of a series (``Conv1D``).
        n_outputs: outputs per sequence (classes for ``softmax``).
        filters, kernel_size, pool_size: the convolution and the max pooling after it.
        units: LSTM units.
        activation: the output's (``"softmax"``: loss ``sparse_categorical_crossentropy``;
            None: ``mse``; ``"sigmoid"``).

    >>> import numpy as np
    >>> model = cnn_lstm((10, 10, 1), n_outputs=2)
    >>> model.predict(np.zeros((3, 6, 10, 10, 1), dtype="float32")).shape
    (3, 2)
    """
    if not isinstance(frame_shape, (tuple, list)) or len(frame_shape) not in (2, 3):
        raise ValueError("cnn_lstm: `frame_shape` is the shape of one time step: (rows, columns, channels) for "
                         f"images or (steps, features) for sub-sequences, got {frame_shape!r}.")
    frame_shape = tuple(check_int("cnn_lstm", "frame_shape", d, minimum=1) for d in frame_shape)
    n_outputs = check_int("cnn_lstm", "n_outputs", n_outputs, minimum=1)
    check_choice("cnn_lstm", "activation", activation, tuple(_OUTPUTS))
    kernel_size = check_int("cnn_lstm", "kernel_size", kernel_size, minimum=1)
    pool_size = check_int("cnn_lstm", "pool_size", pool_size, minimum=1)
    spatial = frame_shape[:-1]
    if any(d - kernel_size + 1 < pool_size for d in spatial):
        raise ValueError(f"cnn_lstm: a frame of {frame_shape} is too small for `kernel_size`={kernel_size} followed "
                         f"by `pool_size`={pool_size}: each of {spatial} must be >= {kernel_size + pool_size - 1}. "
                         "Use a smaller kernel or pool.")
    if len(frame_shape) == 3:
        front = [Conv2D(filters, kernel_size, activation="relu"), MaxPooling2D(pool_size)]
    else:
        front = [Conv1D(filters, kernel_size, activation="relu"), MaxPooling1D(pool_size)]
    layers = [TimeDistributed(layer) for layer in [*front, Flatten()]]
    layers += [LSTM(units), Dense(n_outputs, activation=activation)]
    return _compile(Sequential(layers, input_shape=(None, *frame_shape)), activation, learning_rate)


def conv1d_lstm(n_features: int, n_outputs: int, *, filters: int = 32, kernel_size: int = 5, pool_size: int = 2,
                conv_layers: int = 1, units: int = 32, activation: str | None = None, timesteps: int | None = None,
                learning_rate: float = 0.005) -> Sequential:
    """``Conv1D`` -> ``MaxPooling1D`` (repeated ``conv_layers`` times) -> LSTM -> ``Dense``.

    ``timesteps`` fixes the input length; None takes any length of at least
    ``pool_size ** conv_layers`` steps.

    >>> import numpy as np
    >>> model = conv1d_lstm(n_features=2, n_outputs=1)
    >>> model.predict(np.zeros((4, 50, 2), dtype="float32")).shape
    (4, 1)
    """
    n_features = check_int("conv1d_lstm", "n_features", n_features, minimum=1)
    n_outputs = check_int("conv1d_lstm", "n_outputs", n_outputs, minimum=1)
    conv_layers = check_int("conv1d_lstm", "conv_layers", conv_layers, minimum=1)
    check_choice("conv1d_lstm", "activation", activation, tuple(_OUTPUTS))
    timesteps = check_int("conv1d_lstm", "timesteps", timesteps, minimum=1, allow_none=True)
    pool_size = check_int("conv1d_lstm", "pool_size", pool_size, minimum=1)
    if timesteps is not None and timesteps < pool_size ** conv_layers:
        raise ValueError(f"conv1d_lstm: `timesteps`={timesteps} is too short for {conv_layers} pooling layer(s) of "
                         f"`pool_size`={pool_size}: it needs at least {pool_size ** conv_layers} steps.")
    filters = check_int("conv1d_lstm", "filters", filters, minimum=1)
    layers, width = [], n_features
    for _ in range(conv_layers):  # sizes given, so the weights exist before the first call
        layers += [Conv1D(filters, kernel_size, padding="same", activation="relu", input_size=width),
                   MaxPooling1D(pool_size)]
        width = filters
    layers += [LSTM(units, input_size=filters), Dense(n_outputs, activation=activation, input_size=units)]
    shape = None if timesteps is None else (timesteps, n_features)
    return _compile(Sequential(layers, input_shape=shape), activation, learning_rate)
