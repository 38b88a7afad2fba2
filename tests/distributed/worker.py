"""A training script for the distributed tests, run by torchrun (or plainly) in a real process.

python worker.py OUT --batch B [--shuffle] [--epochs E] [--die-at EPOCH] [--hang-at EPOCH] [--checkpoint DIR]

Trains a tiny LSTM on fixed data and writes the final weights and logs (rank 0) to OUT.
--die-at / --hang-at make rank 1 kill itself (SIGKILL) or stop answering at that epoch.
"""

import argparse
import json
import os
import signal
import time

import numpy as np
import torch

import lstmkit
from lstmkit.callbacks import Callback, ModelCheckpoint
from lstmkit.layers import LSTM, Dense
from lstmkit.models import distributed

torch.set_num_threads(1)


class Sabotage(Callback):
    def __init__(self, die_at, hang_at):
        super().__init__()
        self.die_at, self.hang_at = die_at, hang_at

    def on_epoch_begin(self, epoch, logs=None):
        if distributed.rank() != 1:
            return
        if epoch == self.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if epoch == self.hang_at:
            time.sleep(3600)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--shuffle", action="store_true")
    parser.add_argument("--die-at", type=int, default=-1)
    parser.add_argument("--hang-at", type=int, default=-1)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--tbptt", type=int, default=0)
    args = parser.parse_args(argv)

    lstmkit.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6, 2)).astype(np.float32)
    if args.tbptt:
        y = np.cumsum(x.sum(-1, keepdims=True), axis=1).astype(np.float32) / 4
        model = lstmkit.Sequential([LSTM(5, return_sequences=True), Dense(1)], input_shape=(None, 2))
    else:
        y = x.sum(axis=(1, 2))[:, None].astype(np.float32) / 4
        model = lstmkit.Sequential([LSTM(5), Dense(1)], input_shape=(6, 2))
    model.compile("adam", "mse", metrics=["mae"], learning_rate=0.02)
    callbacks = [Sabotage(args.die_at, args.hang_at)]
    if args.checkpoint:
        callbacks.append(ModelCheckpoint(args.checkpoint, monitor="loss"))
    history = model.fit(x, y, batch_size=args.batch, epochs=args.epochs, shuffle=args.shuffle, verbose=2,
                        validation_split=0.25, callbacks=callbacks, tbptt=args.tbptt or None)
    if distributed.is_main_process():
        os.makedirs(args.out, exist_ok=True)
        model.save(args.out)
        with open(os.path.join(args.out, "history.json"), "w") as f:
            json.dump({"history": history.history, "world": distributed.world_size()}, f)


if __name__ == "__main__":
    main()
