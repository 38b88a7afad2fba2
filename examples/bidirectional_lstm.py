"""Bidirectional against one-directional LSTM on a tagging task that needs later context.

Each step of a random sequence is tagged 1 when its value exceeds the next step's value, so the
tag of step t is decided by step t + 1. A forward-only LSTM must guess (about 75 % at best); a
bidirectional one reads the next step from the other direction.

    python examples/bidirectional_lstm.py
"""

import time

import numpy as np
import torch

import lstmkit
from lstmkit import zoo

if __name__ == "__main__":
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x, y = zoo.tasks.peaks(rng, 2000, steps=20)
    x_test, y_test = zoo.tasks.peaks(rng, 500, steps=20)
    for bidirectional in (False, True):
        lstmkit.set_seed(0)
        start = time.perf_counter()
        model = zoo.bidirectional_lstm(n_features=1, units=32, bidirectional=bidirectional)
        model.fit(x, y, epochs=15, batch_size=32, verbose=0)
        accuracy = model.evaluate(x_test, y_test)["accuracy"]
        name = "bidirectional" if bidirectional else "forward only "
        print(f"{name}: per-step test accuracy {accuracy:.3f} ({time.perf_counter() - start:.0f} s)")
