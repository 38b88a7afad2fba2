"""A character-level language model (Karpathy's char-rnn, in lstmkit's layers) and its sampler.

The model reads characters as ids and predicts the next character at every step:
``Embedding -> LSTM (x layers, return_sequences) -> Dense(softmax over the vocabulary)``.
Its quality is the validation cross-entropy in **bits per character** (bpc): 8 for raw bytes,
about 4.5 for guessing from character frequencies alone, 1-2 for a good model of English text.

No corpus ships with lstmkit: :func:`default_text` is the Python documentation's topic pages
(``pydoc_data.topics``), which every CPython installation has; any text file works instead.

Generation samples one character at a time with a ``temperature``: the probabilities are raised
to the power ``1 / temperature`` and renormalised, so low temperatures pick the likely characters
(conservative, repetitive text) and high ones take risks (varied text, more mistakes).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np
import torch

from lstmkit._validation import check_float, check_int
from lstmkit.data import CharVocabulary
from lstmkit.layers import LSTM, Activation, Dense, Dropout, Embedding, Recurrent
from lstmkit.models import Sequential

logger = logging.getLogger("lstmkit.zoo")


def char_lm(vocab_size: int, *, units: int = 256, layers: int = 1, embed_dim: int = 32, dropout: float = 0.0,
            learning_rate: float = 0.003) -> Sequential:
    """A character language model over ids ``0 .. vocab_size - 1``; input ``(B, T)``, output ``(B, T, V)``.

    Compiled with ``sparse_categorical_crossentropy`` (in nats; divide by ln 2 for bits).

    >>> model = char_lm(vocab_size=5, units=8)
    >>> [type(layer).__name__ for layer in model.layers]
    ['Embedding', 'LSTM', 'Dense']
    """
    vocab_size = check_int("char_lm", "vocab_size", vocab_size, minimum=2)
    layers = check_int("char_lm", "layers", layers, minimum=1)
    dropout = check_float("char_lm", "dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
    stack = [Embedding(vocab_size, check_int("char_lm", "embed_dim", embed_dim, minimum=1))]
    for _ in range(layers):
        stack.append(LSTM(check_int("char_lm", "units", units, minimum=1), return_sequences=True))
        if dropout:
            stack.append(Dropout(dropout))
    stack.append(Dense(vocab_size, activation="softmax"))
    model = Sequential(stack, input_shape=(None,))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", learning_rate=learning_rate,
                  clipnorm=5.0)
    return model


def default_text() -> str:
    """The Python documentation's topic pages (``pydoc_data.topics``): about 0.5 MB of English prose and code."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def text_windows(ids, steps: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows of ``steps`` ids and, for each, the ids one step later.

    ``(N,)`` -> ``x (M, steps)``, ``y (M, steps)`` with ``y[:, t] = x[:, t + 1]`` inside the text.

    >>> x, y = text_windows(np.arange(10), steps=3)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    """
    ids = np.asarray(ids, dtype=np.int64)
    steps = check_int("text_windows", "steps", steps, minimum=1)
    usable = (len(ids) - 1 - offset) // steps
    if usable < 1:
        raise ValueError(f"text_windows: a text of {len(ids)} characters holds no window of `steps`={steps} "
                         f"(+1 for the target) from `offset`={offset}. Use a longer text or shorter windows.")
    end = offset + usable * steps
    return ids[offset:end].reshape(usable, steps), ids[offset + 1:end + 1].reshape(usable, steps)


def bits_per_char(model: Sequential, x, y, batch_size: int = 128) -> float:
    """The model's mean cross-entropy on ``(x, y)`` in bits per character."""
    probs_loss = _nats(model, x, y, batch_size)
    return probs_loss / math.log(2)


def _nats(model, x, y, batch_size):
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                xb = torch.as_tensor(x[start:start + batch_size])
                yb = torch.as_tensor(y[start:start + batch_size])
                p = model(xb)  # (B, T, V)
                picked = p.gather(-1, yb.unsqueeze(-1)).squeeze(-1).clamp_min(1e-12)
                total += float(-picked.log().sum())
                count += yb.numel()
    finally:
        model.train(was_training)
    return total / max(count, 1)


def _check_vocab(model: Sequential, vocab: CharVocabulary, owner: str) -> None:
    if not isinstance(vocab, CharVocabulary):
        raise TypeError(f"{owner}: `vocab` must be the lstmkit.data.CharVocabulary the model was trained with, "
                        f"got {type(vocab).__name__}.")
    if not hasattr(vocab, "index_"):
        raise ValueError(f"{owner}: `vocab` is not fitted; use the vocabulary the model was trained with.")
    first, last = model.layers[0], model.layers[-1]
    sizes = {"the model's Embedding `input_dim`": getattr(first, "input_dim", None),
             "the model's output `units`": getattr(last, "units", None)}
    for what, size in sizes.items():
        if size is not None and size != len(vocab):
            raise ValueError(f"{owner}: the vocabulary does not match the model: `vocab` has {len(vocab)} "
                             f"characters but {what} is {size}. Use the vocabulary saved with the model.")


class _Stepper:
    """Runs a Sequential one time step at a time, carrying each recurrent layer's state."""

    def __init__(self, model: Sequential):
        self.layers = list(model.layers)
        for layer in self.layers:
            ok = isinstance(layer, (Embedding, Dense, Dropout, Activation)) or (
                isinstance(layer, Recurrent) and not layer.go_backwards)
            if not ok:
                raise TypeError(f"sample: cannot run a {type(layer).__name__} layer one step at a time; the model "
                                "must be Embedding, LSTM/GRU/SimpleRNN, Dropout and Dense layers (as char_lm builds).")
        self.states: list = [None] * len(self.layers)

    def step(self, token: torch.Tensor) -> torch.Tensor:
        z = token  # (B,)
        for k, layer in enumerate(self.layers):
            if isinstance(layer, Recurrent):
                z, self.states[k] = layer.cell(z, self.states[k])
            elif isinstance(layer, Dropout):
                continue
            else:
                z = layer(z)
        return z  # (B, V) probabilities


def sample(model: Sequential, vocab: CharVocabulary, length: int = 300, *, temperature: float = 1.0,
           prime: str | None = None, rng: np.random.Generator | None = None) -> str:
    """Generate ``length`` characters after ``prime`` (which conditions the model but is not returned).

    Without ``prime`` generation starts after a newline (or, if the text had none, its first
    character).

    >>> vocab = CharVocabulary().fit("abc")
    >>> model = char_lm(len(vocab), units=4)
    >>> len(sample(model, vocab, 10, prime="ab", rng=np.random.default_rng(0)))
    10
    """
    _check_vocab(model, vocab, "sample")
    length = check_int("sample", "length", length, minimum=0)
    temperature = check_float("sample", "temperature", temperature, low=0.0)
    if temperature == 0.0:
        raise ValueError("sample: `temperature` must be > 0 (a small value such as 0.1 is nearly greedy), got 0.")
    if prime is None:
        prime = "\n" if "\n" in vocab.index_ else vocab.alphabet_[0]
    if not isinstance(prime, str) or not prime:
        raise ValueError(f"sample: `prime` must be a non-empty string to start from, got {prime!r}.")
    unknown = sorted(set(prime) - set(vocab.index_))
    if unknown:
        raise ValueError(f"sample: `prime` holds characters not in the vocabulary: {unknown!r}. Remove them or "
                         "train on a text that has them.")
    rng = rng or np.random.default_rng()
    stepper = _Stepper(model)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            device = model._device()
            ids = vocab.encode(prime)
            for i in ids[:-1]:
                stepper.step(torch.tensor([int(i)], device=device))
            token = int(ids[-1])
            for _ in range(length):
                p = stepper.step(torch.tensor([token], device=device))[0].double().cpu().numpy()
                logp = np.log(np.clip(p, 1e-12, None)) / temperature
                q = np.exp(logp - logp.max())
                token = int(rng.choice(len(q), p=q / q.sum()))
                out.append(token)
    finally:
        model.train(was_training)
    return vocab.decode(out) if out else ""


@dataclasses.dataclass
class CharLMResult:
    """What :func:`train_char_lm` returns."""

    model: Sequential
    vocab: CharVocabulary
    history: dict  # {"loss": [...], "val_loss": [...]} per epoch, in nats per character
    val_bpc: float  # validation bits per character after training
    seconds: float
    epochs: int


def train_char_lm(text: str | None = None, *, steps: int = 100, units: int = 256, layers: int = 1,
                  batch_size: int = 64, epochs: int = 100, minutes: float | None = 2.0, val_fraction: float = 0.1,
                  learning_rate: float = 0.003, seed: int = 0) -> CharLMResult:
    """Train :func:`char_lm` on ``text`` (default: :func:`default_text`), holding out its last part.

    Each epoch reads the training text in windows of ``steps`` characters from a fresh random
    offset; training stops after ``epochs`` or once ``minutes`` have passed (checked per epoch).
    """
    text = default_text() if text is None else text
    if not isinstance(text, str):
        raise TypeError(f"train_char_lm: `text` must be a string, got {type(text).__name__}.")
    steps = check_int("train_char_lm", "steps", steps, minimum=2)
    val_fraction = check_float("train_char_lm", "val_fraction", val_fraction, low=0.0, high=0.5)
    cut = int(len(text) * (1 - val_fraction))
    if cut < 2 * steps + 2 or len(text) - cut < steps + 1:
        raise ValueError(f"train_char_lm: the text has {len(text)} characters; with `steps`={steps} and "
                         f"`val_fraction`={val_fraction} it needs at least {int((3 * steps + 3) / max(val_fraction, 1e-9))} "
                         "so that training and validation both hold windows. Give a longer text.")
    from lstmkit.models import set_seed

    set_seed(seed)
    rng = np.random.default_rng(seed)
    vocab = CharVocabulary().fit(text)
    ids = vocab.encode(text)
    train_ids, val_ids = ids[:cut], ids[cut:]
    val_x, val_y = text_windows(val_ids, steps)
    model = char_lm(len(vocab), units=units, layers=layers, learning_rate=learning_rate)
    history: dict = {"loss": [], "val_loss": []}
    start = time.perf_counter()
    epoch = 0
    for epoch in range(1, check_int("train_char_lm", "epochs", epochs, minimum=1) + 1):
        x, y = text_windows(train_ids, steps, offset=int(rng.integers(0, steps)))
        h = model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        history["loss"].append(h.history["loss"][-1])
        history["val_loss"].append(_nats(model, val_x, val_y, 256))
        logger.info("epoch %d: training %.3f, validation %.3f bits/char (%.0f s)", epoch,
                    history["loss"][-1] / math.log(2), history["val_loss"][-1] / math.log(2),
                    time.perf_counter() - start)
        if minutes is not None and time.perf_counter() - start > 60 * minutes:
            break
    return CharLMResult(model, vocab, history, history["val_loss"][-1] / math.log(2),
                        time.perf_counter() - start, epoch)
