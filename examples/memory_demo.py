"""The classic "demonstration of memory" tutorial, written with lstmkit line by line.

Two sequences, 3,0,1,2,3 and 4,0,1,2,4, one-hot over 5 symbols; predict the next symbol at every
step. A stateful LSTM(20) is fed one time step per batch of one, the state reset after each
sequence, for 250 epochs. This runs as the tutorial wrote it (which Keras 3 no longer does:
`batch_input_shape` and `reset_states()` are gone) -- and, as the tutorial's own set-up implies,
it learns the last step only by luck: see docs/memory-demo.md. For the ways that learn it every
time, run `lstmkit demo memory` (whole sequences) or `lstmkit demo memory --way tbptt`.

    python examples/memory_demo.py [seed]
"""

import sys

import numpy as np

import lstmkit
from lstmkit.layers import LSTM, Dense, TimeDistributed

lstmkit.set_seed(int(sys.argv[1]) if len(sys.argv) > 1 else 0)


# binary encode an integer sequence
def encode(pattern, n_unique):
    encoded = []
    for value in pattern:
        row = [0.0 for _ in range(n_unique)]
        row[value] = 1.0
        encoded.append(row)
    return encoded


# create input/output pairs of encoded vectors, returns X, y
def to_xy_pairs(encoded):
    X, y = [], []
    for i in range(1, len(encoded)):
        X.append(encoded[i - 1])
        y.append(encoded[i])
    return X, y


# convert sequence to x/y pairs ready for use with an LSTM: one time step per sample
def to_lstm_dataset(sequence, n_unique):
    encoded = encode(sequence, n_unique)
    X, y = to_xy_pairs(encoded)
    dfX, dfy = np.array(X, dtype=np.float32), np.array(y, dtype=np.float32)
    lstmX = dfX.reshape((dfX.shape[0], 1, dfX.shape[1]))
    lstmY = dfy.reshape((dfy.shape[0], 1, dfy.shape[1]))
    return lstmX, lstmY


# define sequences
seq1 = [3, 0, 1, 2, 3]
seq2 = [4, 0, 1, 2, 4]
# convert sequences into required data format
n_unique = len(set(seq1 + seq2))
seq1X, seq1Y = to_lstm_dataset(seq1, n_unique)
seq2X, seq2Y = to_lstm_dataset(seq2, n_unique)
# define LSTM configuration
n_neurons = 20
n_batch = 1
n_epoch = 250
n_features = n_unique
# create LSTM (the tutorial's batch_input_shape=(1, 1, 5) is input_shape + batch_size)
model = lstmkit.Sequential(input_shape=(1, n_features), batch_size=n_batch)
model.add(LSTM(n_neurons, return_sequences=True, stateful=True))
model.add(TimeDistributed(Dense(n_unique, activation="sigmoid")))
model.compile(loss="binary_crossentropy", optimizer="adam")
model.summary()
# train LSTM
for i in range(n_epoch):
    model.fit(seq1X, seq1Y, epochs=1, batch_size=n_batch, verbose=0, shuffle=False)
    model.reset_states()
    model.fit(seq2X, seq2Y, epochs=1, batch_size=n_batch, verbose=0, shuffle=False)
    model.reset_states()

# test LSTM on sequence 1
print("Sequence 1")
result = model.predict_classes(seq1X, batch_size=n_batch)
model.reset_states()
for i in range(len(result)):
    print("X=%.1f y=%.1f, yhat=%.1f" % (seq1[i], seq1[i + 1], result[i][0]))
# test LSTM on sequence 2
print("Sequence 2")
result2 = model.predict_classes(seq2X, batch_size=n_batch)
model.reset_states()
for i in range(len(result2)):
    print("X=%.1f y=%.1f, yhat=%.1f" % (seq2[i], seq2[i + 1], result2[i][0]))
solved = list(result[:, 0]) == seq1[1:] and list(result2[:, 0]) == seq2[1:]
print("both sequences learned" if solved else "not learned: the last step needs memory the gradient never reached")
