"""CNN-LSTM: a convolution on every frame of a video (TimeDistributed), then an LSTM over time;
and Conv1D -> LSTM on a long series.

1. Videos of a line moving left or right across 10x10 frames: which way does it move?
2. Monthly sunspot numbers: predict next month (the horizon of the comparison, one month ahead)
   from the last `lookback` months. The model reads the window relative to its last value and
   predicts the change from this month to the next, both divided by the spread of the training
   part's month-to-month changes (fitted on the training part only); persistence (next month =
   this month) is then the model that always predicts a change of 0. The lookback (24, 60 or 132
   months, up to one solar cycle) is chosen on an inner validation split, the last 20 % of the
   training part's months, which also stops training early; the test part (the last 20 % of the
   series) is used once, for the chosen model.

    python examples/cnn_lstm.py
"""

import time

import numpy as np
import torch

import lstmkit
from lstmkit import datasets, zoo
from lstmkit.data import time_split, to_supervised
from lstmkit.callbacks import EarlyStopping

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
    train_months = int(round(0.8 * len(series)))
    n_val = int(0.2 * train_months)  # windows whose targets are the training part's last months
    scale = float(np.diff(series[:train_months]).std())

    def windows(part, lookback):
        """Inputs relative to the window's last value and the change to the next month, scaled."""
        X, Y = to_supervised(part, lookback)  # (N, lookback, 1), (N, 1)
        last = X[:, -1:, :]  # (N, 1, 1)
        return (X - last) / scale, (Y - last[:, :, 0]) / scale

    start = time.perf_counter()
    best = None
    for lookback in (24, 60, 132):
        train, _ = time_split(series, sizes=(0.8, 0.2), overlap=lookback)
        X, Y = windows(train, lookback)
        lstmkit.set_seed(0)
        model = zoo.conv1d_lstm(n_features=1, n_outputs=1, filters=16, kernel_size=5, pool_size=2, units=16)
        model.fit(X[:-n_val], Y[:-n_val], epochs=60, batch_size=32, verbose=0,
                  validation_data=(X[-n_val:], Y[-n_val:]),
                  callbacks=[EarlyStopping(patience=8, restore_best_weights=True)])
        val_mae = float(np.abs(model.predict(X[-n_val:])[:, 0] - Y[-n_val:, 0]).mean() * scale)
        print(f"sunspots, lookback {lookback:>3}: inner validation MAE {val_mae:.2f} "
              f"(persistence {np.abs(Y[-n_val:, 0]).mean() * scale:.2f})")
        if best is None or val_mae < best[0]:
            best = (val_mae, lookback, model)
    _, lookback, model = best
    _, test = time_split(series, sizes=(0.8, 0.2), overlap=lookback)
    X_test, Y_test = windows(test, lookback)
    truth = Y_test[:, 0] * scale  # the change to the next month, in sunspots
    mae = np.abs(model.predict(X_test)[:, 0] * scale - truth).mean()
    mean3 = np.abs(X_test[:, -3:, 0].mean(1) * scale - truth).mean()  # the mean of the last 3 months
    print(f"sunspots (Conv1D -> LSTM, lookback {lookback}, chosen on validation), one month ahead: test MAE "
          f"{mae:.2f} against persistence {np.abs(truth).mean():.2f} and the mean of the last 3 months "
          f"{mean3:.2f} ({time.perf_counter() - start:.0f} s)")
