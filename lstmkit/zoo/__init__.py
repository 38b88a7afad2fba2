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

Names are imported on first use, so that the ``lstmkit`` command (which registers
``lstmkit.zoo.cli``) starts without importing torch.
"""

import importlib

_WHERE = {
    "encode": "autoencoder", "encoder": "autoencoder", "lstm_autoencoder": "autoencoder",
    "CharLMResult": "charlm", "bits_per_char": "charlm", "char_lm": "charlm", "default_text": "charlm",
    "sample": "charlm", "text_windows": "charlm", "train_char_lm": "charlm",
    "cnn_lstm": "conv", "conv1d_lstm": "conv",
    "bidirectional_lstm": "recurrent", "sequence_classifier": "recurrent", "stacked_lstm": "recurrent",
    "vanilla_lstm": "recurrent",
    "attention_weights": "encdec", "decode": "encdec", "encoder_decoder": "encdec", "seq2seq": "encdec",
    "seq2seq_input": "encdec", "sequence_accuracy": "encdec",
}

__all__ = sorted(_WHERE) + ["tasks"]


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"lstmkit.zoo.{_WHERE[name]}"), name)
    if name == "tasks":
        return importlib.import_module("lstmkit.zoo.tasks")
    raise AttributeError(f"module 'lstmkit.zoo' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE) + ["tasks"])
