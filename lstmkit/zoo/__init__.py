"""Reference LSTM architectures, each a documented builder that returns an ordinary lstmkit model.

| builder | architecture |
|---|---|
| :func:`vanilla_lstm`, :func:`stacked_lstm` | one LSTM layer, or several with ``return_sequences`` between |
| :func:`bidirectional_lstm` | forwards + backwards LSTM, tagging each step or the whole sequence |
| :func:`cnn_lstm`, :func:`conv1d_lstm` | a CNN on each step (``TimeDistributed``), or Conv1D -> LSTM |
| :func:`encoder_decoder`, :func:`seq2seq` | seq2seq: ``RepeatVector`` form, teacher-forced form (+ attention) |
| :func:`lstm_autoencoder` | reconstruction / prediction / composite autoencoder; :func:`encoder` alone |
| :func:`char_lm` | character language model; :func:`sample` with a temperature |
| :func:`sequence_classifier` | numeric or token input -> LSTM -> softmax, masked for variable lengths |

Builders return compiled models (Adam, a loss fitting the output); ``compile`` again to change it.
:mod:`lstmkit.zoo.tasks` holds the generated tasks the examples and tests learn.

>>> from lstmkit import zoo
>>> model = zoo.vanilla_lstm(n_features=1, n_outputs=1, units=8)
>>> type(model).__name__
'Sequential'
"""

from lstmkit.zoo import tasks
from lstmkit.zoo.autoencoder import encode, encoder, lstm_autoencoder
from lstmkit.zoo.charlm import (CharLMResult, bits_per_char, char_lm, default_text, sample, text_windows,
                                train_char_lm)
from lstmkit.zoo.conv import cnn_lstm, conv1d_lstm
from lstmkit.zoo.recurrent import bidirectional_lstm, sequence_classifier, stacked_lstm, vanilla_lstm
from lstmkit.zoo.seq2seq import (attention_weights, decode, encoder_decoder, seq2seq, seq2seq_input,
                                 sequence_accuracy)

__all__ = ["CharLMResult", "attention_weights", "bidirectional_lstm", "bits_per_char", "char_lm", "cnn_lstm",
           "conv1d_lstm", "decode", "default_text", "encode", "encoder", "encoder_decoder", "lstm_autoencoder",
           "sample", "seq2seq", "seq2seq_input", "sequence_accuracy", "sequence_classifier", "stacked_lstm",
           "tasks", "text_windows", "train_char_lm", "vanilla_lstm"]
