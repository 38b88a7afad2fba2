"""Inference latency: one streaming step, and the overhead of ``predict`` over the raw kernel.

Rows, measured in one run:

- one step of a stateful LSTM(64), batch 1 (``x (1, 1, 1)``): ``torch.nn.LSTM`` (the anchor),
  ``torch.nn.LSTMCell``, lstmkit's ``LSTM(stateful=True)`` layer, a peephole variant,
  ``torch.nn.GRUCell`` and lstmkit's ``GRU(stateful=True)``, ``torch.nn.RNNCell`` and lstmkit's
  ``SimpleRNN(stateful=True)``, and Keras 3 where it is installed;
- ``predict`` on a whole batch: ``Sequential([LSTM(64), Dense(1)]).predict(x)`` against calling
  ``torch.nn.LSTM`` + ``Linear`` directly under ``no_grad`` (what a user would write by hand), and
  against calling the model's own two layers by hand (the same kernels ``predict`` runs: at
  batch 1-4 the layer's compiled shortcut, above it oneDNN). The first difference is what a user gains or
  loses by calling ``predict``; the second is ``predict``'s own per-call overhead (input
  conversion, batching, the mode switch, the output array). The three are timed in alternating
  blocks, since the differences are small next to the drift of the machine over the seconds a
  measurement takes. The two differences are medians over the rounds of each round's difference;
  the quartiles of those differences (the last column) show what the rounds can resolve: at
  batch 1 tens of microseconds, at batch 32 and above, where a call takes milliseconds, hundreds.

The step rows (Keras's apart, milliseconds a step) are timed the same way: blocks of 2,000 calls of
each in turn, in a fresh random order each round; a ratio is the median over the rounds of the
row's block over the anchor's block of the same round.

After the step rows, a line reads the issue's goal for a step (at most 20 us, set where
``torch.nn.LSTM``'s step took 56 us) as the ratio the issue measures its goals by, and in
microseconds on this machine.

Run: ``python benchmarks/inference.py [--threads N] [--rounds R] [--calls C]``. Medians over many
calls, after warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
import torch
from torch import nn

from _timing import alternated_us, paired_difference, paired_difference_quartiles, paired_ratio, per_call_us

import lstmkit
from lstmkit.layers import GRU, LSTM, Dense, SimpleRNN


# issue #8's goal for one streaming step, and torch.nn.LSTM's step on the machine it was set on
STEP_GOAL_US, STEP_ANCHOR_US = 20.0, 56.0


def keras_step_us():
    try:
        import keras
    except Exception:
        return None

    layer = keras.layers.LSTM(64, stateful=True)
    model = keras.Sequential([keras.Input(batch_shape=(1, 1, 1)), layer])
    x = np.zeros((1, 1, 1), dtype="float32")
    return per_call_us(lambda: model(x, training=False), calls=200)


def cell_step(cell, x):
    """One step of a ``torch.nn`` cell on ``x (1, 1, I)``, its state passed back in, as a function."""
    state = None

    def step():
        nonlocal state
        state = cell(x[:, 0], state)

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9, help="alternated rounds of every table")
    parser.add_argument("--calls", type=int, default=2000, help="calls per block of a streaming step "
                        "(predict's blocks scale with it: 3000 calls at batch 1 by default)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# inference benchmark: torch {torch.__version__}, lstmkit {lstmkit.__version__}, "
          f"{args.threads} thread(s), float32; microseconds per call (median)")
    print()
    print("| one streaming step, LSTM(64), GRU(64) or SimpleRNN(64), batch 1 | us per step | ratio to torch.nn.LSTM |")
    print("|---|---|---|")
    x = torch.randn(1, 1, 1)
    rows = []
    with torch.no_grad():
        torch_lstm = nn.LSTM(1, 64, batch_first=True)
        state = None

        def torch_step():
            nonlocal state
            _, state = torch_lstm(x, state)

        rows.append(("torch.nn.LSTM (state passed back in)", torch_step))
        rows.append(("torch.nn.LSTMCell", cell_step(nn.LSTMCell(1, 64), x)))
        ours = LSTM(64, input_size=1, stateful=True).eval()
        rows.append(("lstmkit LSTM(stateful=True)", lambda: ours(x)))
        peephole = LSTM(64, variant="peephole", input_size=1, stateful=True).eval()
        rows.append(("lstmkit LSTM(variant='peephole', stateful=True)", lambda: peephole(x)))
        rows.append(("torch.nn.GRUCell", cell_step(nn.GRUCell(1, 64), x)))
        gru = GRU(64, input_size=1, stateful=True).eval()
        rows.append(("lstmkit GRU(stateful=True)", lambda: gru(x)))
        rows.append(("torch.nn.RNNCell", cell_step(nn.RNNCell(1, 64), x)))
        rnn = SimpleRNN(64, input_size=1, stateful=True).eval()
        rows.append(("lstmkit SimpleRNN(stateful=True)", lambda: rnn(x)))
        # every row in alternating blocks, in a fresh order each round (as the predict rows)
        blocks = alternated_us([fn for _, fn in rows], calls=args.calls, rounds=args.rounds,
                               warmup=min(200, args.calls))
    anchor = blocks[0]
    for (label, _), times in zip(rows, blocks):
        print(f"| {label} | {statistics.median(times):.1f} | {paired_ratio(times, anchor):.2f}x |")
    step_us, step_ratio = statistics.median(blocks[2]), paired_ratio(blocks[2], anchor)
    keras_us = keras_step_us()  # milliseconds a step: timed on its own
    if keras_us is None:
        print("| Keras 3 LSTM(stateful=True) | not installed | |")
    else:
        print(f"| Keras 3 LSTM(stateful=True) | {keras_us:.1f} | {keras_us / statistics.median(anchor):.2f}x |")

    # The goals are ratios measured in one run; its 20 us for a step was set where
    # torch.nn.LSTM's step took 56 us (an AVX-512 machine): the same goal here is that ratio.
    print()
    print(f"Goal (issue #8): a step at most {STEP_GOAL_US:.0f} us where torch.nn.LSTM's took {STEP_ANCHOR_US:.0f}, "
          f"at most {STEP_GOAL_US / STEP_ANCHOR_US:.2f}x of it: lstmkit LSTM(stateful=True) "
          f"{step_ratio:.2f}x here ({step_us:.1f} us; {'within' if step_us <= STEP_GOAL_US else 'above'} "
          f"{STEP_GOAL_US:.0f} us on this machine).")
    print()
    print("| predict on a batch, LSTM(64) + Dense(1) | nn.LSTM + Linear us | the model's layers by hand us "
          "| lstmkit predict us | predict minus nn.LSTM us | predict minus its layers us (quartiles of the rounds) |")
    print("|---|---|---|---|---|---|")
    for B, T in ((1, 10), (32, 50), (256, 50)):
        xb = torch.randn(B, T, 1)
        model = lstmkit.Sequential([LSTM(64), Dense(1)], input_shape=(T, 1))
        raw_lstm = nn.LSTM(1, 64, batch_first=True)
        raw_dense = nn.Linear(64, 1)
        lstm_layer, dense_layer = model.layers

        def raw():
            with torch.no_grad():
                y, _ = raw_lstm(xb)
                return raw_dense(y[:, -1]).numpy()

        def by_hand():
            with torch.no_grad():
                return dense_layer(lstm_layer(xb)).numpy()

        # the model stays in training mode, as a fresh one is, so that predict's mode switch is
        # timed too; its layers have no dropout, so by hand they compute the same either way
        raw_t, hand_t, ours_t = alternated_us([raw, by_hand, lambda: model.predict(xb, batch_size=B)],
                                              calls=max(1, min(10, args.calls), args.calls * 3 // (2 * B)),
                                              rounds=args.rounds)
        t_raw, t_hand, t_ours = (statistics.median(t) for t in (raw_t, hand_t, ours_t))
        q1, q3 = paired_difference_quartiles(ours_t, hand_t)
        print(f"| B={B}, T={T} | {t_raw:.1f} | {t_hand:.1f} | {t_ours:.1f} | {paired_difference(ours_t, raw_t):+.1f} "
              f"| {paired_difference(ours_t, hand_t):+.1f} ({q1:+.0f} to {q3:+.0f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
