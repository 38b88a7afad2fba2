"""Attention against the plain encoder-decoder as the input grows: reversing sequences of 8 and 16 ids.

The plain model must squeeze the whole input into the encoder's final state; with attention the
decoder looks back at every encoder output. Writes the attention weights of one test sequence as
a heatmap (attention.png): reversal shows as the anti-diagonal.

    python examples/attention.py
"""

import time

import numpy as np
import torch

import lstmkit
from lstmkit import plot, zoo
from lstmkit.zoo import tasks

VOCAB = 10

if __name__ == "__main__":
    torch.set_num_threads(1)
    for steps in (8, 16):
        rng = np.random.default_rng(0)
        source, target = tasks.reverse(rng, 3000, steps, VOCAB)
        test_source, test_target = tasks.reverse(rng, 500, steps, VOCAB)
        for attention in (None, "dot", "additive"):
            lstmkit.set_seed(0)
            start = time.perf_counter()
            model = zoo.seq2seq(VOCAB, VOCAB, steps, units=64, embed_dim=16, attention=attention, learning_rate=0.01)
            model.fit(zoo.seq2seq_input(source, target), target, epochs=10, batch_size=64, verbose=0)
            predicted = zoo.decode(model, test_source)
            print(f"reverse {steps:>2} ids, attention={str(attention):<8}: tokens {(predicted == test_target).mean():.3f}, "
                  f"sequences exact {zoo.sequence_accuracy(predicted, test_target):.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            if attention == "additive" and steps == 16:
                weights = zoo.attention_weights(model, test_source[:1])[0]
                plot.attention(weights, source_labels=test_source[0], target_labels=predicted[0],
                               title="additive attention, reversing 16 ids", file="attention.png")
                print("attention.png: weight on the mirrored source step, mean over output steps "
                      f"{np.mean([weights[t, steps - 1 - t] for t in range(steps)]):.2f}")
