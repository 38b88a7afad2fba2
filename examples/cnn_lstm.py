"""CNN-LSTM: a convolution on every frame of a video (TimeDistributed), then an LSTM over time;
and Conv1D -> LSTM on a long series.

1. Videos of a line moving left or right across 10x10 frames: which way does it move?
2. Monthly sunspot numbers: predict next month from the last 132 months (11 years, one solar
   cycle); Conv1D + pooling shorten the 132 steps to 33 before the LSTM. Compared with
   persistence (next month = this month).

    python examples/cnn_lstm.py
"""

import time

import numpy as np
import torch

import lstmkit
from lstmkit import datasets, zoo
from lstmkit.data import time_split, to_supervised

if __name__ == "__main__":
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x, y = zoo.tasks.moving_line(rng, 1000, frames=8, size=10)
    x_test, y_test = zoo.tasks.moving_line(rng, 500, frames=8, size=10)
    lstmkit.set_seed(0)
    start = time.perf_counter()
    model = zoo.cnn_lstm((10, 10, 1), n_outputs=2, filters=8, units=16)
    model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    print(f"moving line (TimeDistributed Conv2D -> LSTM): test accuracy "
          f"{model.evaluate(x_test, y_test)['accuracy']:.3f} ({time.perf_counter() - start:.0f} s)")

    series = datasets.load("sunspots_monthly").to_numpy().astype("float32")
    lookback = 132
    train, test = time_split(series, sizes=(0.8, 0.2), overlap=lookback)
    scale = float(train.max())
    X, Y = to_supervised(train / scale, lookback)
    X_test, Y_test = to_supervised(test / scale, lookback)
    lstmkit.set_seed(0)
    start = time.perf_counter()
    model = zoo.conv1d_lstm(n_features=1, n_outputs=1, filters=32, kernel_size=5, pool_size=2, conv_layers=2,
                            units=32)
    model.fit(X, Y, epochs=30, batch_size=32, verbose=0, validation_split=0.1)
    pred = model.predict(X_test)[:, 0] * scale
    truth = Y_test[:, 0] * scale
    persistence = X_test[:, -1, 0] * scale
    print(f"sunspots (Conv1D -> LSTM, lookback {lookback}): test MAE {np.abs(pred - truth).mean():.2f} against "
          f"persistence {np.abs(persistence - truth).mean():.2f} ({time.perf_counter() - start:.0f} s)")
