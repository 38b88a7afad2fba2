"""LSTM autoencoders: reconstruction, prediction and composite forms; the encoder as a feature extractor.

The autoencoder is trained on BasicMotions' training sequences (smart-watch motion, 6 channels,
100 steps), without their labels. Its encoder then turns each sequence into a 32-number code. If
the codes separate the four activities, a 1-nearest-neighbour classifier on the codes does well on
the test set; compared with the same classifier on the codes of an untrained encoder, and on the
raw standardised sequences.

    python examples/autoencoder.py
"""

import time

import numpy as np
import torch

import lstmkit
from lstmkit import datasets, zoo


def nearest_neighbour(train, y_train, test, y_test):
    distances = ((test[:, None] - train[None]) ** 2).reshape(len(test), len(train), -1).sum(-1)
    return float((y_train[distances.argmin(1)] == y_test).mean())


if __name__ == "__main__":
    torch.set_num_threads(1)
    X_train, y_train, X_test, y_test = datasets.load("basic_motions")
    x, x_test = np.stack(X_train).astype("float32"), np.stack(X_test).astype("float32")
    mean, std = x.reshape(-1, 6).mean(0), x.reshape(-1, 6).std(0)
    x, x_test = (x - mean) / std, (x_test - mean) / std
    x, x_test = x[:, ::2], x_test[:, ::2]  # 50 steps at 5 Hz: half the time, same motions
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    print(f"1-NN on the raw sequences: test accuracy {nearest_neighbour(x, y_train, x_test, y_test):.3f} "
          "(chance 0.25)")
    lstmkit.set_seed(0)
    untrained = zoo.lstm_autoencoder(50, 6, units=32)
    print(f"1-NN on untrained codes:   test accuracy "
          f"{nearest_neighbour(zoo.encode(untrained, x), y_train, zoo.encode(untrained, x_test), y_test):.3f}")
    for mode in ("reconstruction", "prediction", "composite"):
        lstmkit.set_seed(0)
        start = time.perf_counter()
        if mode == "reconstruction":
            model, inputs, targets, test_inputs = zoo.lstm_autoencoder(50, 6, units=32), x, x, x_test
        else:  # read the first 40 steps; predict the last 10 (and, composite, rebuild the 40)
            model = zoo.lstm_autoencoder(40, 6, units=32, mode=mode, future_steps=10)
            inputs, test_inputs = x[:, :40], x_test[:, :40]
            targets = x[:, 40:] if mode == "prediction" else x
        history = model.fit(inputs, targets, epochs=150, batch_size=8, verbose=0)
        codes, test_codes = zoo.encode(model, inputs), zoo.encode(model, test_inputs)
        print(f"{mode:<14} autoencoder: loss {history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.3f}; "
              f"1-NN on its codes: test accuracy {nearest_neighbour(codes, y_train, test_codes, y_test):.3f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
