"""Time the life cycle against plain PyTorch (and Keras 3 when it is installed), in one run.

1. The memory demo's full training as the tutorial writes it: a stateful LSTM(20) + sigmoid
   Dense(5), one time step per batch of one, 250 epochs x 2 sequences x 4 steps = 2,000 updates
   in 500 ``fit`` calls; and the lstmkit way (whole sequences, 500 updates in one ``fit`` call).
2. The overhead of ``fit`` per batch for a tiny model, against the same steps written by hand
   (zero_grad, forward, loss, backward, step): one ``fit(x, y, epochs=1)`` call on one batch
   (fit's set-up included), and on 50 batches (the per-batch loop); timed in alternating blocks.

Each lstmkit row is printed with its ratio to the plain PyTorch row of the same work. Timings are
medians over the repeats after a warm-up. Run: ``python benchmarks/lifecycle.py [--threads N]
[--repeats N] [--epochs N]``.
"""

from __future__ import annotations

import argparse
import platform
import sys

import numpy as np
import torch
from torch import nn

from _timing import median_time, paired_us

import lstmkit
from lstmkit.experiments import memory
from lstmkit.layers import LSTM, Dense


# ------------------------------------------------------------------ 1. memory demo

def lstmkit_tutorial(epochs: int) -> None:
    model = memory.build("tutorial")
    memory.train(model, "tutorial", epochs)


def lstmkit_bptt(epochs: int) -> None:
    model = memory.build("bptt")
    memory.train(model, "bptt", epochs)


class TorchNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 20, batch_first=True)
        self.out = nn.Linear(20, 5)

    def forward(self, x, state=None):
        y, state = self.lstm(x, state)
        return torch.sigmoid(self.out(y)), state


def torch_tutorial(epochs: int) -> None:
    x, y = memory.make_data()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    net = TorchNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.BCELoss()
    for _ in range(epochs):
        for seq in range(2):
            state = None
            for t in range(4):
                out, state = net(x[seq:seq + 1, t:t + 1], state)
                state = tuple(s.detach() for s in state)
                loss = loss_fn(out, y[seq:seq + 1, t:t + 1])
                opt.zero_grad()
                loss.backward()
                opt.step()


def torch_bptt(epochs: int) -> None:
    x, y = memory.make_data()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    net = TorchNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, eps=1e-7)
    loss_fn = nn.BCELoss()
    for _ in range(epochs):
        for seq in torch.randperm(2).tolist():
            out, _ = net(x[seq:seq + 1])
            loss = loss_fn(out, y[seq:seq + 1])
            opt.zero_grad()
            loss.backward()
            opt.step()


def keras_tutorial(epochs: int):
    """The tutorial in Keras 3 (stateful via a fixed batch shape), or None when Keras is absent."""
    try:
        import keras
    except ImportError:
        return None
    x, y = memory.make_data()
    model = keras.Sequential([keras.Input(batch_shape=(1, 1, 5)),
                              keras.layers.LSTM(20, return_sequences=True, stateful=True),
                              keras.layers.TimeDistributed(keras.layers.Dense(5, activation="sigmoid"))])
    model.compile(loss="binary_crossentropy", optimizer="adam")

    def reset():
        for layer in model.layers:
            if hasattr(layer, "reset_state"):
                layer.reset_state()

    def run():
        for _ in range(epochs):
            for seq in range(2):
                model.fit(x[seq][:, None, :], y[seq][:, None, :], epochs=1, batch_size=1, verbose=0, shuffle=False)
                reset()

    return run


# ------------------------------------------------------------------ 2. per-call overhead of fit

def overhead_cases(batch: int = 8):
    rng = np.random.default_rng(0)
    cases = []
    for label, make_lstmkit, make_torch, x_shape, y_shape in [
        ("Dense(1) on (8, 3)", lambda: lstmkit.Sequential([Dense(1)], input_shape=(3,)),
         lambda: nn.Linear(3, 1), (batch, 3), (batch, 1)),
        ("LSTM(20)+Dense(5) on (8, 1, 5)",
         lambda: lstmkit.Sequential([LSTM(20, return_sequences=True), Dense(5, activation="sigmoid")],
                                    input_shape=(1, 5)),
         lambda: _TorchSeq(), (batch, 1, 5), (batch, 1, 5)),
    ]:
        x = rng.random(x_shape, dtype=np.float32)
        y = rng.random(y_shape, dtype=np.float32)
        cases.append((label, make_lstmkit, make_torch, x, y))
    return cases


class _TorchSeq(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 20, batch_first=True)
        self.out = nn.Linear(20, 5)

    def forward(self, x):
        return torch.sigmoid(self.out(self.lstm(x)[0]))


def time_overhead(case, calls: int, batches: int = 1) -> tuple[float, float]:
    """Seconds per batch: ``fit(x, y, epochs=1)`` over ``batches`` batches of the case's size in
    one call, and the same batches through a hand-written loop; timed in alternating blocks."""
    label, make_lstmkit, make_torch, x, y = case
    x, y = np.concatenate([x] * batches), np.concatenate([y] * batches)
    size = len(x) // batches
    model = make_lstmkit()
    model.compile("adam", "mse")

    def lk():
        model.fit(x, y, epochs=1, batch_size=size, verbose=0, shuffle=False)

    net = make_torch()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def pt():
        for start in range(0, len(xt), size):
            loss = nn.functional.mse_loss(net(xt[start:start + size]), yt[start:start + size])
            opt.zero_grad()
            loss.backward()
            opt.step()

    t_lk, t_pt = paired_us([lk, pt], calls=max(1, calls // batches))
    return t_lk / batches * 1e-6, t_pt / batches * 1e-6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=250)
    parser.add_argument("--calls", type=int, default=200, help="batches per block of the overhead measurement")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lstmkit.set_seed(0)
    print(f"lstmkit {lstmkit.__version__}, torch {torch.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {torch.get_num_threads()} thread(s); medians of {args.repeats} runs")
    print()
    print(f"1. Memory demo, full training ({args.epochs} epochs x 2 sequences x 4 steps)")
    print(f"   {'':48s} {'seconds':>9s} {'vs PyTorch':>11s}")
    ep = args.epochs
    t_torch = median_time(lambda: torch_tutorial(ep), args.repeats)
    t_lk = median_time(lambda: lstmkit_tutorial(ep), args.repeats)
    print(f"   {'plain PyTorch, one step per update (2,000 updates)':48s} {t_torch:9.2f} {1.0:10.2f}x")
    print(f"   {'lstmkit tutorial way (500 fit calls)':48s} {t_lk:9.2f} {t_lk / t_torch:10.2f}x")
    keras_run = keras_tutorial(ep)
    if keras_run is None:
        print(f"   {'Keras 3 tutorial way':48s} {'skipped: keras is not installed':>21s}")
    else:
        try:
            t_k = median_time(keras_run, 1)
            print(f"   {'Keras 3 tutorial way (500 fit calls)':48s} {t_k:9.2f} {t_k / t_torch:10.2f}x")
        except Exception as err:  # a benchmark reports what failed instead of stopping
            print(f"   Keras 3 tutorial way: failed ({type(err).__name__}: {err})")
    t_torch_b = median_time(lambda: torch_bptt(ep), args.repeats)
    t_lk_b = median_time(lambda: lstmkit_bptt(ep), args.repeats)
    print(f"   {'plain PyTorch, whole sequences (500 updates)':48s} {t_torch_b:9.2f} {1.0:10.2f}x")
    print(f"   {'lstmkit whole sequences (one fit call)':48s} {t_lk_b:9.2f} {t_lk_b / t_torch_b:10.2f}x")
    print()
    print("2. Cost of fit(x, y, epochs=1) per batch, against the same steps written by hand")
    print("   (one batch per fit call: fit's set-up included; 50 batches in one call: the per-batch loop)")
    print(f"   {'':34s} {'batches':>8s} {'lstmkit fit':>12s} {'PyTorch step':>13s} {'ratio':>7s} {'overhead':>10s}")
    for case in overhead_cases():
        for batches in (1, 50):
            lk, pt = time_overhead(case, args.calls, batches)
            print(f"   {case[0]:34s} {batches:8d} {lk * 1e6:10.0f}us {pt * 1e6:11.0f}us {lk / pt:6.2f}x "
                  f"{(lk - pt) * 1e6:8.0f}us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
