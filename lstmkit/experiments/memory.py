"""The memory demonstration: two sequences that only a network with memory can tell apart.

``3, 0, 1, 2, 3`` and ``4, 0, 1, 2, 4``, one-hot over 5 symbols; predict the next symbol at every
step. The first four predictions are the same for both sequences except the very first, but the
last one (after ``2``) must be ``3`` or ``4``: the symbol seen four steps earlier. Solved when
both sequences are predicted exactly.

Three ways to train the same network (LSTM(20), a sigmoid Dense(5), binary cross-entropy, Adam,
at most 250 epochs):

- ``"tutorial"``: the classic Keras tutorial, line by line: a stateful LSTM fed one time step
  per batch of one, the state reset after each sequence. Each update's gradient stops at the
  batch boundary, so no gradient ever reaches the step that saw the first symbol; the network
  can only learn the last step by chance. Unreliable.
- ``"bptt"``: each sequence is one sample, trained with back-propagation through the whole
  sequence (4 steps). Reliable with Adam at learning rate 0.01.
- ``"tbptt"``: the stateful streaming set-up of the tutorial, trained with
  ``fit(..., tbptt=(1, 4))``: an update after every step, back-propagating through the last 4
  steps (Williams & Peng 1990). Reliable.

Measured success rates over 20 seeds are in ``docs/memory-demo.md``.

>>> result = run("bptt", seed=0, epochs=250)  # doctest: +SKIP
>>> result["solved"]  # doctest: +SKIP
True
"""

from __future__ import annotations

import time

import numpy as np
import torch

from lstmkit._validation import check_choice, check_int
from lstmkit.layers import LSTM, Dense, TimeDistributed
from lstmkit.models import Sequential, set_seed

SEQUENCES = ((3, 0, 1, 2, 3), (4, 0, 1, 2, 4))
N_SYMBOLS = 5
WAYS = ("bptt", "tbptt", "tutorial")
# The settings each way uses by default; docs/memory-demo.md says why.
DEFAULTS = {"bptt": {"learning_rate": 0.01}, "tbptt": {"learning_rate": 0.01, "k1": 1, "k2": 4},
            "tutorial": {"learning_rate": 0.001}}


def one_hot(seq) -> np.ndarray:
    """``(len(seq), 5)`` float32 one-hot rows."""
    out = np.zeros((len(seq), N_SYMBOLS), dtype=np.float32)
    out[np.arange(len(seq)), list(seq)] = 1.0
    return out


def make_data() -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(2, 4, 5)`` (each sequence but its last symbol) and targets ``(2, 4, 5)`` (shifted by one)."""
    x = np.stack([one_hot(s[:-1]) for s in SEQUENCES])
    y = np.stack([one_hot(s[1:]) for s in SEQUENCES])
    return x, y


def build(way: str, units: int = 20, learning_rate: float | None = None, init: str = "keras") -> Sequential:
    """The compiled model for ``way`` (see the module docstring); ``init`` is the LSTM's initialisation."""
    way = check_choice("memory", "way", way, WAYS)
    lr = DEFAULTS[way]["learning_rate"] if learning_rate is None else learning_rate
    if way == "tutorial":
        model = Sequential([LSTM(units, return_sequences=True, stateful=True, init=init),
                            TimeDistributed(Dense(N_SYMBOLS, activation="sigmoid"))],
                           input_shape=(1, N_SYMBOLS), batch_size=1)
    elif way == "tbptt":
        model = Sequential([LSTM(units, return_sequences=True, stateful=True, init=init),
                            Dense(N_SYMBOLS, activation="sigmoid")],
                           input_shape=(None, N_SYMBOLS), batch_size=1)
    else:
        model = Sequential([LSTM(units, return_sequences=True, init=init), Dense(N_SYMBOLS, activation="sigmoid")],
                           input_shape=(None, N_SYMBOLS))
    model.compile(optimizer="adam", loss="binary_crossentropy", learning_rate=lr)
    return model


def train(model: Sequential, way: str, epochs: int = 250, k1: int = 1, k2: int = 4) -> None:
    """Train ``model`` (from :func:`build`) the given way for ``epochs`` passes over both sequences."""
    x, y = make_data()
    if way == "tutorial":
        # One sample per step, one step per sample: (4, 1, 5), fitted in order with the state carried.
        steps_x, steps_y = x[:, :, None, :], y[:, :, None, :]
        for _ in range(epochs):
            for sx, sy in zip(steps_x, steps_y):
                model.fit(sx, sy, epochs=1, batch_size=1, verbose=0, shuffle=False)
                model.reset_states()
    elif way == "tbptt":
        model.fit(x, y, epochs=epochs, batch_size=1, verbose=0, shuffle=False, tbptt=(k1, k2),
                  reset_states="batch")
    else:
        model.fit(x, y, epochs=epochs, batch_size=1, verbose=0, shuffle=True)


def predict_sequences(model: Sequential, way: str) -> list[list[int]]:
    """The predicted next symbols for each sequence, the state reset before each."""
    x, _ = make_data()
    predictions = []
    for seq in x:
        model.reset_states()
        if way == "tutorial":
            classes = model.predict_classes(seq[:, None, :], batch_size=1)[:, 0]
        else:
            classes = model.predict_classes(seq[None])[0]
        predictions.append([int(c) for c in classes])
    model.reset_states()
    return predictions


def solved(predictions: list[list[int]]) -> bool:
    return all(list(p) == list(s[1:]) for p, s in zip(predictions, SEQUENCES))


def run(way: str = "bptt", seed: int = 0, epochs: int = 250, units: int = 20,
        learning_rate: float | None = None, k1: int = 1, k2: int = 4, init: str = "keras") -> dict:
    """Train one network from ``seed`` and report ``solved``, the predictions and the time taken."""
    way = check_choice("memory", "way", way, WAYS)
    epochs = check_int("memory", "epochs", epochs, minimum=1)
    set_seed(seed)
    start = time.perf_counter()
    model = build(way, units, learning_rate, init)
    train(model, way, epochs, k1, k2)
    seconds = time.perf_counter() - start
    predictions = predict_sequences(model, way)
    return {"way": way, "seed": seed, "solved": solved(predictions), "predictions": predictions,
            "seconds": seconds, "model": model}


def success_rate(way: str, seeds=range(20), **options) -> tuple[int, int, list[int]]:
    """``(solved, tried, failed_seeds)`` over ``seeds``."""
    failed = [s for s in seeds if not run(way, seed=s, **options)["solved"]]
    tried = len(list(seeds))
    return tried - len(failed), tried, failed


def main(args) -> int:
    """``lstmkit demo memory``: train, then print each sequence with its predictions."""
    if args.seeds:
        ok, tried, failed = success_rate(args.way, range(args.seeds), epochs=args.epochs)
        print(f"{args.way}: solved {ok} of {tried} seeds" + (f" (failed: {failed})" if failed else ""))
        return 0
    torch.set_num_threads(1)
    result = run(args.way, seed=args.seed, epochs=args.epochs)
    print(f"way={args.way} seed={args.seed} epochs={args.epochs} ({result['seconds']:.1f} s)")
    for seq, pred in zip(SEQUENCES, result["predictions"]):
        marks = " ".join(str(p) if p == t else f"{p}!" for p, t in zip(pred, seq[1:]))
        print(f"  sequence {', '.join(map(str, seq))}: after {', '.join(map(str, seq[:-1]))} "
              f"predicted {marks}")
    print("solved: both sequences predicted exactly" if result["solved"] else "not solved (! marks errors)")
    return 0 if result["solved"] else 1
