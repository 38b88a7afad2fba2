"""What the classic experiments share: cells by name, the network, and online-style training.

The 1997 paper trained online and stopped on a rule about the most recent *training* sequences
("the last 2,000 sequences were all correct"). lstmkit trains on minibatches with Adam and
gradient clipping, through the library's own ``Model.fit`` (one call per freshly drawn batch),
and judges each batch by the outputs the network produced on it *before* that batch's update:
exactly what an online learner's error on those sequences would have been at that moment, only
measured B sequences at a time. :class:`Streak` applies the stopping rule sequence by sequence.

Shape:
    B sequences per batch, T time steps, F input symbols or features, C outputs.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Callable

import numpy as np
import torch

from lstmkit._validation import check_choice, check_float, check_int
from lstmkit.cells.variants import VARIANTS
from lstmkit.layers import GRU, LSTM, Dense, SimpleRNN
from lstmkit.models import Sequential, set_seed

logger = logging.getLogger("lstmkit.experiments")

#: ``--cell`` names: ``lstm`` is the forget-gate LSTM (``variant="vanilla"``), ``rnn`` the Elman
#: network, ``gru`` the GRU; every LSTM variant of :data:`lstmkit.cells.VARIANTS` by its name.
CELLS = ("lstm", "rnn", "gru", *VARIANTS)


def check_cell(owner: str, cell: str) -> str:
    return check_choice(owner, "cell", cell, CELLS)


def recurrent_layer(cell: str, units: int, *, return_sequences: bool = False, stateful: bool = False):
    """The recurrent layer for ``cell`` with ``units`` hidden units.

    >>> recurrent_layer("lstm1997", 4).variant.name, type(recurrent_layer("gru", 4)).__name__
    ('lstm1997', 'GRU')
    """
    options = dict(return_sequences=return_sequences, stateful=stateful)
    if cell == "rnn":
        return SimpleRNN(units, **options)
    if cell == "gru":
        return GRU(units, **options)
    return LSTM(units, variant="vanilla" if cell == "lstm" else cell, **options)


def set_gate_bias(layer, gate: str, value: float | None) -> None:
    """Write ``value`` into gate ``gate``'s block of ``bias_ih`` (and ``bias_hh``'s block to 0).

    ``gate`` is ``"i"``, ``"f"`` or ``"o"``. None keeps the library's default (forget gate 1.0,
    Jozefowicz et al. 2015; 0 for the others); layers without that gate are left alone.
    """
    if value is None or not isinstance(layer, LSTM) or gate not in layer.variant.gates:
        return
    H, k = layer.units, layer.variant.gates.index(gate)
    with torch.no_grad():
        layer.cell.bias_ih[k * H:(k + 1) * H].fill_(value)
        layer.cell.bias_hh[k * H:(k + 1) * H].fill_(0.0)


def set_forget_bias(layer, value: float | None) -> None:
    """:func:`set_gate_bias` for the forget gate (cells without one are left alone)."""
    set_gate_bias(layer, "f", value)


class RecordingLoss:
    """A loss for ``compile`` that also keeps the batch's outputs (detached) in ``.last``.

    ``kind``: ``"categorical"`` (softmax outputs, one-hot targets; all-zero target rows are padding
    and count for nothing), ``"binary"`` (sigmoid outputs, 0/1 targets per unit), ``"mse"``.
    """

    def __init__(self, kind: str):
        self.kind = check_choice("RecordingLoss", "kind", kind, ("categorical", "binary", "mse"))
        self.last: torch.Tensor | None = None

    def __call__(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.last = pred.detach()
        if self.kind == "mse":
            return torch.nn.functional.mse_loss(pred, y)
        p = pred.clamp(1e-7, 1.0 - 1e-7)
        if self.kind == "binary":
            return torch.nn.functional.binary_cross_entropy(p, y)
        real = y.sum(-1)  # 1 on real steps, 0 on padding
        return -(y * p.log()).sum() / real.sum().clamp_min(1.0)


def build_network(cell: str, n_in: int, n_out: int, *, units: int, activation: str, loss: RecordingLoss,
                  learning_rate: float, clipnorm: float = 1.0, return_sequences: bool = False,
                  batch_size: int | None = None, stateful: bool = False,
                  forget_bias: float | None = None, input_bias: float | None = None) -> Sequential:
    """``Sequential([<cell>(units), Dense(n_out, activation)])``, compiled with Adam and ``clipnorm``.

    ``forget_bias`` / ``input_bias``: the initial forget- / input-gate bias (None: the library's
    default, 1.0 / 0.0).
    """
    layer = recurrent_layer(cell, units, return_sequences=return_sequences, stateful=stateful)
    model = Sequential([layer, Dense(n_out, activation=activation)], input_shape=(None, n_in),
                       batch_size=batch_size)
    set_forget_bias(layer, forget_bias)
    set_gate_bias(layer, "i", input_bias)
    model.compile(optimizer="adam", loss=loss, learning_rate=learning_rate, clipnorm=clipnorm)
    return model


class Streak:
    """The 1997 stopping rule over training sequences, fed in the order they were seen.

    Met when the last ``window`` sequences were all correct and, if ``max_error`` is given, their
    mean error is below it. ``start`` is the number of sequences seen before the current run of
    correct ones began.

    >>> s = Streak(3)
    >>> s.update([True, False, True, True]), s.update([True]), s.start
    (False, True, 2)
    """

    def __init__(self, window: int, max_error: float | None = None):
        self.window = check_int("Streak", "window", window, minimum=1)
        self.max_error = max_error
        self.errors: deque = deque(maxlen=self.window)
        self.run = 0
        self.seen = 0
        self.start = 0

    def update(self, correct, errors=None) -> bool:
        correct = np.asarray(correct, dtype=bool)
        errs = np.zeros(len(correct)) if errors is None else np.asarray(errors, dtype=float)
        met = False
        for ok, err in zip(correct, errs):
            self.seen += 1
            self.errors.append(err)
            if ok:
                self.run += 1
            else:
                self.run, self.start = 0, self.seen
            if self.run >= self.window and (self.max_error is None or float(np.mean(self.errors)) < self.max_error):
                met = True
                break
        return met


def progress(total: int, desc: str, verbose: bool):
    """A progress bar over training sequences (nothing when ``verbose`` is False)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="seq", disable=not verbose, leave=False, dynamic_ncols=True,
                mininterval=0.5)


def train_online(model: Sequential, loss: RecordingLoss, draw: Callable[[], tuple],
                 judge: Callable[[torch.Tensor, tuple], bool], *, max_sequences: int, desc: str,
                 verbose: bool, count: Callable[[tuple], int] | None = None) -> tuple[bool, int]:
    """Train on fresh batches from ``draw()`` until ``judge`` says the criterion holds.

    ``draw() -> (x, y, *extra)``; ``judge(outputs, batch) -> bool`` sees the outputs the network
    gave on that batch before its update. Returns ``(met, sequences seen)``. ``count(batch)``
    says how many training sequences a batch holds (default: its first axis).
    """
    seen = 0
    with progress(max_sequences, desc, verbose) as bar:
        while seen < max_sequences:
            batch = draw()
            x, y = batch[0], batch[1]
            model.fit(x, y, batch_size=x.shape[0], epochs=1, verbose=0, shuffle=False)
            n = x.shape[0] if count is None else count(batch)
            seen += n
            bar.update(n)
            if judge(loss.last, batch):
                return True, seen
    return False, seen


def predict_all(model: Sequential, xs: list[np.ndarray], batch_size: int = 256) -> list[np.ndarray]:
    """The outputs for sequences of different lengths, run in groups of equal length (no padding)."""
    by_length: dict[int, list[int]] = {}
    for k, x in enumerate(xs):
        by_length.setdefault(x.shape[0], []).append(k)
    out: list[np.ndarray | None] = [None] * len(xs)
    for idx in by_length.values():
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            pred = model.predict(torch.from_numpy(np.stack([xs[k] for k in part])), batch_size=len(part))
            for k, p in zip(part, pred):
                out[k] = p
    return out


def one_hot(ids, n: int) -> np.ndarray:
    """``(len(ids), n)`` float32 one-hot rows.

    >>> one_hot([0, 2], 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    ids = np.asarray(ids, dtype=np.int64)
    out = np.zeros((len(ids), n), dtype=np.float32)
    out[np.arange(len(ids)), ids] = 1.0
    return out


def start_trial(seed: int) -> tuple[np.random.Generator, float]:
    """Seed torch (weights) and return a NumPy generator for the data, and the start time."""
    set_seed(seed)
    return np.random.default_rng(seed), time.perf_counter()


def check_settings(owner: str, settings: dict, defaults: dict) -> dict:
    """``defaults`` updated with ``settings``, refusing names the task does not have."""
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise ValueError(f"{owner}: unknown setting(s) {', '.join(map(repr, unknown))}. "
                         f"Expected some of: {', '.join(sorted(defaults))}.")
    merged = dict(defaults)
    merged.update(settings)
    for key in ("units", "batch_size", "max_sequences"):
        if key in merged:  # a None budget is the task's to fill in (adding: by T)
            merged[key] = check_int(owner, key, merged[key], minimum=1, allow_none=defaults.get(key, 0) is None)
    if "learning_rate" in merged:
        merged["learning_rate"] = check_float(owner, "learning_rate", merged["learning_rate"], low=0.0)
    return merged
