"""LSTM autoencoders: reconstruction, prediction and composite forms; the encoder as a feature extractor.

The autoencoder is trained on BasicMotions' training sequences (smart-watch motion, 6 channels,
100 steps, standardised with the training set's mean and spread), without their labels. Its
encoder then turns each sequence into a 16-number code. If the codes separate the four
activities, a 1-nearest-neighbour classifier on the codes does well on the test set. The
comparison that matters is with the same model *before* training (a random LSTM is already a
fair feature extractor), so each seed's encoder is scored untrained and trained, and the script
reports the mean over five seeds.

The code size (16, against 8 and 32) was chosen on the training set alone: leave-one-out 1-NN
on the 40 training codes, where 16 gave the largest gain of trained over untrained codes.

    python examples/autoencoder.py
"""

import time

import numpy as np
import torch

import lstmkit
from lstmkit import datasets, zoo

SEEDS = (0, 1, 2, 3, 4)
UNITS = 16


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
    for mode in ("reconstruction", "prediction", "composite"):
        start = time.perf_counter()
        before, after, losses = [], [], []
        for seed in SEEDS:
            lstmkit.set_seed(seed)
            if mode == "reconstruction":
                model, inputs, targets, test_inputs = zoo.lstm_autoencoder(50, 6, units=UNITS), x, x, x_test
            else:  # read the first 40 steps; predict the last 10 (and, composite, rebuild the 40)
                model = zoo.lstm_autoencoder(40, 6, units=UNITS, mode=mode, future_steps=10)
                inputs, test_inputs = x[:, :40], x_test[:, :40]
                targets = x[:, 40:] if mode == "prediction" else x
            before.append(nearest_neighbour(zoo.encode(model, inputs), y_train, zoo.encode(model, test_inputs),
                                            y_test))
            history = model.fit(inputs, targets, epochs=150, batch_size=8, verbose=0)
            after.append(nearest_neighbour(zoo.encode(model, inputs), y_train, zoo.encode(model, test_inputs),
                                           y_test))
            losses.append((history.history["loss"][0], history.history["loss"][-1]))
        first, last = np.mean(losses, axis=0)
        print(f"{mode:<14} autoencoder: loss {first:.2f} -> {last:.2f}; 1-NN test accuracy on its codes, mean of "
              f"{len(SEEDS)} seeds: untrained {np.mean(before):.3f}, trained {np.mean(after):.3f} "
              f"(trained better in {sum(a > b for a, b in zip(after, before))}, worse in "
              f"{sum(a < b for a, b in zip(after, before))} of {len(SEEDS)}; per seed "
              f"{' '.join(f'{b:.3f}->{a:.3f}' for b, a in zip(before, after))}) ({time.perf_counter() - start:.0f} s)",
              flush=True)
