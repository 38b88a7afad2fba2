"""LSTM autoencoders (Srivastava et al. 2015): an encoder LSTM squeezes a sequence into one vector,
a decoder LSTM rebuilds from it.

Three forms, chosen by ``mode``:

- ``"reconstruction"``: the decoder reproduces the input ``(B, T, F)``;
- ``"prediction"``: the decoder produces the ``future_steps`` that follow the input;
- ``"composite"``: both decoders from one code; the output is the reconstruction followed by the
  prediction along time, ``(B, T + future_steps, F)`` (targets: ``np.concatenate([x, future], 1)``).

After training, :func:`encoder` gives the encoder alone (sharing its weights), a feature extractor
whose codes ``(B, units)`` feed any other model.
"""

from __future__ import annotations

import numpy as np

from lstmkit._validation import check_choice, check_int
from lstmkit.layers import LSTM, Dense, Parallel, RepeatVector
from lstmkit.models import Sequential

MODES = ("reconstruction", "prediction", "composite")


def _decoder(steps: int, units: int, n_features: int) -> list:
    return [RepeatVector(steps), LSTM(units, return_sequences=True), Dense(n_features)]


def lstm_autoencoder(timesteps: int, n_features: int, units: int = 32, *, mode: str = "reconstruction",
                     future_steps: int | None = None, learning_rate: float = 0.005) -> Sequential:
    """An LSTM encoder-decoder trained to reconstruct and/or predict its input (loss ``mse``).

    Args:
        timesteps: T, the input length.
        n_features: F.
        units: the code size (the encoder's units; the decoders have as many).
        mode: ``"reconstruction"``, ``"prediction"`` or ``"composite"``.
        future_steps: steps to predict (``"prediction"`` and ``"composite"``).

    >>> import numpy as np
    >>> model = lstm_autoencoder(timesteps=6, n_features=2, units=4, mode="composite", future_steps=3)
    >>> model.predict(np.zeros((5, 6, 2), dtype="float32")).shape
    (5, 9, 2)
    >>> encode(model, np.zeros((5, 6, 2), dtype="float32")).shape
    (5, 4)
    """
    timesteps = check_int("lstm_autoencoder", "timesteps", timesteps, minimum=1)
    n_features = check_int("lstm_autoencoder", "n_features", n_features, minimum=1)
    units = check_int("lstm_autoencoder", "units", units, minimum=1)
    mode = check_choice("lstm_autoencoder", "mode", mode, MODES)
    if mode == "reconstruction":
        if future_steps is not None:
            raise ValueError("lstm_autoencoder: `future_steps` is for mode='prediction' or 'composite'; "
                             f"mode='reconstruction' rebuilds the input itself. Got future_steps={future_steps}.")
        decoder = _decoder(timesteps, units, n_features)
    else:
        if future_steps is None:
            raise ValueError(f"lstm_autoencoder: mode={mode!r} needs `future_steps`, the number of steps to predict.")
        future_steps = check_int("lstm_autoencoder", "future_steps", future_steps, minimum=1)
        if mode == "prediction":
            decoder = _decoder(future_steps, units, n_features)
        else:
            decoder = [Parallel([_decoder(timesteps, units, n_features),
                                 _decoder(future_steps, units, n_features)], axis=1)]
    model = Sequential([LSTM(units), *decoder], input_shape=(timesteps, n_features))
    model.compile(optimizer="adam", loss="mse", learning_rate=learning_rate)
    return model


def encoder(model: Sequential) -> Sequential:
    """The encoder of an autoencoder from :func:`lstm_autoencoder`, as a model of its own.

    It shares the weights (the same layer object): ``encoder(model).predict(x)`` gives the codes
    ``(B, units)``.
    """
    if not isinstance(model, Sequential) or not len(model.layers) or not isinstance(model.layers[0], LSTM):
        raise TypeError("encoder: expected an autoencoder from lstmkit.zoo.lstm_autoencoder (a Sequential whose "
                        f"first layer is the encoder LSTM), got {type(model).__name__}.")
    return Sequential([model.layers[0]], input_shape=model.input_shape)


def encode(model: Sequential, x, batch_size: int = 256) -> np.ndarray:
    """The codes ``(B, units)`` the autoencoder ``model`` gives the sequences ``x (B, T, F)``."""
    return encoder(model).predict(x, batch_size=batch_size)
