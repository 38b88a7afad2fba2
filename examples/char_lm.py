"""A character-level LSTM language model, trained for a minute and a half, then sampled at two temperatures.

Trains on the Python documentation's topic pages (pydoc_data.topics, in every Python), or on the
text file given as the first argument. Prints the validation bits per character (the last 10 %
of the text, never trained on) and samples. The same as `lstmkit generate`.

    python examples/char_lm.py [FILE]
"""

import logging
import sys

import numpy as np
import torch

from lstmkit import plot, zoo

if __name__ == "__main__":
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    text = open(sys.argv[1], encoding="utf-8").read() if len(sys.argv) > 1 else None
    result = zoo.train_char_lm(text, units=256, steps=100, minutes=1.5)
    print(f"{len(result.vocab)} characters, {result.epochs} epochs in {result.seconds:.0f} s: "
          f"validation {result.val_bpc:.3f} bits per character")
    print("learning curves:", plot.diagnose(result.history))
    for temperature in (0.5, 1.0):
        text = zoo.sample(result.model, result.vocab, 300, temperature=temperature, prime="The ",
                          rng=np.random.default_rng(0))
        print(f"--- temperature {temperature} ---\nThe {text}")
