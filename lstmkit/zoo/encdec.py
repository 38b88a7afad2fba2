"""Builders for encoder-decoder (sequence-to-sequence) models over token ids, and their helpers.

Two forms:

- :func:`encoder_decoder` (the ``RepeatVector`` form): the encoder LSTM's final output, repeated
  ``out_steps`` times, is the decoder LSTM's input at every step. One ordinary ``Sequential``.
- :func:`seq2seq` (the teacher-forced form): the encoder's final state ``(h, c)`` starts the
  decoder, which reads the previous target token; at inference it reads its own previous
  prediction, step by step. With ``attention="additive"`` (Bahdanau) or ``"dot"`` (Luong) the
  decoder attends over all the encoder's outputs (:func:`attention_weights` returns the weights).

Ids run from 0 to ``vocab - 1``; the decoder's start token is an extra id the model owns.
"""

from __future__ import annotations

import numpy as np
import torch

from lstmkit._validation import check_int
from lstmkit.layers import LSTM, Dense, Embedding, RepeatVector, Seq2Seq
from lstmkit.models import Model, Sequential


def _out_steps(owner: str, out_steps) -> int:
    if isinstance(out_steps, int) and not isinstance(out_steps, bool) and out_steps < 1:
        raise ValueError(f"{owner}: `out_steps` (the decoder length) must be >= 1, got {out_steps}. "
                         "A decoder that produces no step has nothing to learn.")
    return check_int(owner, "out_steps", out_steps, minimum=1)


def encoder_decoder(input_dim: int, output_dim: int, out_steps: int, *, units: int = 64, embed_dim: int = 32,
                    learning_rate: float = 0.005) -> Sequential:
    """The ``RepeatVector`` encoder-decoder: ``Embedding -> LSTM -> RepeatVector -> LSTM -> Dense``.

    Input ``(B, S)`` ids in ``[0, input_dim)``; output ``(B, out_steps, output_dim)`` probabilities.
    Compiled with ``sparse_categorical_crossentropy`` and ``accuracy`` (per token).

    >>> import numpy as np
    >>> model = encoder_decoder(input_dim=10, output_dim=10, out_steps=2, units=8)
    >>> model.predict(np.array([[1, 2, 3, 4, 5]])).shape
    (1, 2, 10)
    """
    out_steps = _out_steps("encoder_decoder", out_steps)
    input_dim = check_int("encoder_decoder", "input_dim", input_dim, minimum=1)
    output_dim = check_int("encoder_decoder", "output_dim", output_dim, minimum=1)
    model = Sequential([Embedding(input_dim, check_int("encoder_decoder", "embed_dim", embed_dim, minimum=1)),
                        LSTM(units), RepeatVector(out_steps), LSTM(units, return_sequences=True),
                        Dense(output_dim, activation="softmax")], input_shape=(None,))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  learning_rate=learning_rate)
    return model


def seq2seq(input_dim: int, output_dim: int, out_steps: int, *, units: int = 64, embed_dim: int = 32,
            attention: str | None = None, learning_rate: float = 0.005) -> Sequential:
    """The teacher-forced encoder-decoder, optionally with attention: ``Sequential([Seq2Seq(...)])``.

    Train on ``seq2seq_input(source, target)`` against ``target``; ``model.evaluate`` and
    :func:`decode` run the step-by-step inference loop (the decoder feeds back its own predictions).

    Args:
        input_dim, output_dim: source and target vocabulary sizes.
        out_steps: the decoder length.
        attention: None, ``"additive"`` (Bahdanau), ``"dot"`` or ``"general"`` (Luong).

    >>> import numpy as np
    >>> model = seq2seq(input_dim=10, output_dim=10, out_steps=3, units=8, attention="additive")
    >>> decode(model, np.array([[1, 2, 3, 4]])).shape
    (1, 3)
    """
    out_steps = _out_steps("seq2seq", out_steps)
    model = Sequential([Seq2Seq(input_dim, output_dim, out_steps, units=units, embed_dim=embed_dim,
                                attention=attention)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  learning_rate=learning_rate)
    return model


def _ids(owner: str, name: str, value) -> np.ndarray:
    array = np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value)
    if array.ndim != 2 or array.dtype.kind not in "iu":
        raise ValueError(f"{owner}: `{name}` must be integer ids of shape (batch, steps), got "
                         f"{array.dtype} of shape {array.shape}.")
    return array.astype(np.int64)


def seq2seq_input(source, target=None, out_steps: int | None = None) -> np.ndarray:
    """Pack source and target ids into the one input a :class:`~lstmkit.layers.Seq2Seq` model reads.

    ``(B, S)`` and ``(B, out_steps)`` -> ``(B, S + out_steps)``. Without ``target`` (inference),
    ``out_steps`` zeros take its place.

    >>> seq2seq_input([[5, 6, 7]], [[7, 6]]).tolist()
    [[5, 6, 7, 7, 6]]
    >>> seq2seq_input([[5, 6, 7]], out_steps=2).tolist()
    [[5, 6, 7, 0, 0]]
    """
    source = _ids("seq2seq_input", "source", source)
    if target is None:
        if out_steps is None:
            raise ValueError("seq2seq_input: give `target` (training) or `out_steps` (inference).")
        target = np.zeros((source.shape[0], _out_steps("seq2seq_input", out_steps)), dtype=np.int64)
    target = _ids("seq2seq_input", "target", target)
    if target.shape[0] != source.shape[0]:
        raise ValueError(f"seq2seq_input: `source` has {source.shape[0]} sequences but `target` has "
                         f"{target.shape[0]}; they must match.")
    if out_steps is not None and target.shape[1] != out_steps:
        raise ValueError(f"seq2seq_input: `target` has {target.shape[1]} steps, `out_steps` is {out_steps}.")
    return np.concatenate([source, target], axis=1)


def _seq2seq_layer(model) -> Seq2Seq | None:
    for m in model.modules():
        if isinstance(m, Seq2Seq):
            return m
    return None


def decode(model: Model, source, batch_size: int = 256) -> np.ndarray:
    """The predicted target ids ``(B, out_steps)`` for source ids ``(B, S)``, either form of model.

    For the teacher-forced form this is the inference loop: each step reads the previous
    step's prediction (greedy decoding).
    """
    source = _ids("decode", "source", source)
    layer = _seq2seq_layer(model)
    x = source if layer is None else seq2seq_input(source, out_steps=layer.out_steps)
    return model.predict(x, batch_size=batch_size).argmax(-1)


def attention_weights(model: Model, source) -> np.ndarray:
    """The attention weights ``(B, out_steps, S)`` of an attention model decoding ``source``.

    Row t says how much each source step contributed to output step t; plot it as a heatmap.

    >>> import numpy as np
    >>> model = seq2seq(6, 6, out_steps=2, units=4, embed_dim=4, attention="dot")
    >>> attention_weights(model, np.array([[1, 2, 3]])).shape
    (1, 2, 3)
    """
    layer = _seq2seq_layer(model)
    if layer is None or layer.attention is None:
        raise ValueError("attention_weights: the model has no attention; build it with "
                         "seq2seq(..., attention='additive') or 'dot'.")
    source = _ids("attention_weights", "source", source)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.as_tensor(seq2seq_input(source, out_steps=layer.out_steps), device=model._device()))
    finally:
        model.train(was_training)
    return layer.last_attention.cpu().numpy()


def sequence_accuracy(predicted, target) -> float:
    """The fraction of sequences predicted exactly (every step right).

    >>> sequence_accuracy([[1, 2], [3, 4]], [[1, 2], [3, 5]])
    0.5
    """
    predicted, target = np.asarray(predicted), np.asarray(target)
    if predicted.shape != target.shape:
        raise ValueError(f"sequence_accuracy: `predicted` {predicted.shape} and `target` {target.shape} must have "
                         "the same shape.")
    return float((predicted == target).reshape(len(target), -1).all(axis=1).mean())
