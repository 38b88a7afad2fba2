"""Vanilla and stacked LSTMs forecasting Melbourne's daily maximum temperature one day ahead.

Input: the last 14 days; the scaler is fitted on the training years only; the last two years are
the test set. Compared with persistence (tomorrow = today) and the training-split mean.

    python examples/stacked_lstm.py
"""

import time

import numpy as np
import torch

import lstmkit
from lstmkit import datasets, zoo
from lstmkit.data import StandardScaler, time_split, to_supervised

if __name__ == "__main__":
    torch.set_num_threads(1)
    series = datasets.load("melbourne_max_temperature").to_numpy().astype("float32")[:, None]
    lookback = 14
    train, test = time_split(series, sizes=(0.8, 0.2), overlap=lookback)
    scaler = StandardScaler().fit(train)
    X, Y = to_supervised(scaler.transform(train), lookback)
    X_test, Y_test = to_supervised(scaler.transform(test), lookback)
    truth = scaler.inverse_transform(Y_test.reshape(-1, 1))[:, 0]
    persistence = scaler.inverse_transform(X_test[:, -1])[:, 0]
    print(f"persistence: test MAE {np.abs(persistence - truth).mean():.2f} C; "
          f"training mean: {np.abs(float(train.mean()) - truth).mean():.2f} C")
    for name, units in (("vanilla (1 x 32)", 32), ("stacked (2 x 32)", (32, 32))):
        lstmkit.set_seed(0)
        start = time.perf_counter()
        if isinstance(units, int):
            model = zoo.vanilla_lstm(1, 1, units=units)
        else:
            model = zoo.stacked_lstm(1, 1, units=units)
        model.fit(X, Y, epochs=20, batch_size=64, verbose=0)
        pred = scaler.inverse_transform(model.predict(X_test))[:, 0]
        print(f"{name}: test MAE {np.abs(pred - truth).mean():.2f} C ({time.perf_counter() - start:.0f} s)")
