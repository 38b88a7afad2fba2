"""Diagnostic plots: learning curves with a verdict in words, and an LSTM's gates and cell state.

- :func:`history` draws the training and validation loss per epoch, and :func:`diagnose` says
  whether the curves look **under-fit** (still improving, or hardly learning), **over-fit**
  (validation loss turned up while training loss kept falling) or **good**.
- :func:`lstm_trace` runs one LSTM layer over a sequence and records every gate, the cell state
  and the output at each step; :func:`gates` draws them as heatmaps (time across, cells down).

Figures use matplotlib's Agg backend (no display needed) and are returned; give ``file=`` to
also write a PNG.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

THRESHOLD = 0.03  # a relative change of the loss smaller than this over the last epochs counts as flat


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """``verdict`` is ``"under-fit"``, ``"over-fit"`` or ``"good"``; ``reason`` says why, in words."""

    verdict: str
    reason: str

    def __str__(self) -> str:
        return f"{self.verdict}: {self.reason}"


def _curves(history) -> tuple[np.ndarray, np.ndarray | None]:
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or "loss" not in logs:
        raise TypeError("`history` must be what fit() returns (a History) or a dict with a 'loss' list, got "
                        f"{type(history).__name__}.")
    loss = np.asarray(logs["loss"], dtype=float)
    val = logs.get("val_loss")
    val = None if val is None or len(val) == 0 else np.asarray(val, dtype=float)
    if val is not None and len(val) != len(loss):
        raise ValueError(f"`history` has {len(loss)} training losses but {len(val)} validation losses.")
    return loss, val


def _falling(series: np.ndarray, tail: int) -> float:
    """The relative fall of ``series`` over its last ``tail`` epochs (positive: still falling)."""
    before = series[-tail - 1]
    return float((before - series[-1]) / max(abs(before), 1e-12))


def diagnose(history) -> Diagnosis:
    """The classic reading of learning curves, from ``history.history["loss"]`` and ``["val_loss"]``.

    - **over-fit**: the validation loss reached its minimum well before the end and has since
      risen by more than 10 % while the training loss kept falling;
    - **under-fit**: the training (or validation) loss is still falling over the last fifth of the
      epochs, or it hardly fell at all;
    - **good**: both curves have flattened, and the validation loss did not turn up.

    >>> str(diagnose({"loss": [1.0, 0.5, 0.3, 0.2, 0.15, 0.1], "val_loss": [1.0, 0.6, 0.5, 0.6, 0.7, 0.8]}))[:8]
    'over-fit'
    >>> diagnose({"loss": [1.0, 0.8, 0.6, 0.4, 0.3, 0.2]}).verdict
    'under-fit'
    >>> diagnose({"loss": [1.0, 0.3, 0.21, 0.2, 0.2, 0.2], "val_loss": [1.0, 0.35, 0.25, 0.24, 0.24, 0.24]}).verdict
    'good'
    """
    loss, val = _curves(history)
    n = len(loss)
    if n < 3:
        return Diagnosis("under-fit", f"only {n} epoch(s): too few to judge; train for more epochs.")
    tail = max(1, n // 5)
    if val is not None:
        best = int(np.argmin(val))
        rose = (val[-1] - val[best]) / max(abs(val[best]), 1e-12)
        if best < n - tail and rose > 0.10 and loss[-1] < loss[best]:
            return Diagnosis("over-fit", f"the validation loss was lowest at epoch {best + 1} ({val[best]:.4g}) and "
                             f"rose {100 * rose:.0f}% by epoch {n} ({val[-1]:.4g}) while the training loss kept "
                             f"falling ({loss[best]:.4g} -> {loss[-1]:.4g}). Stop earlier (EarlyStopping with "
                             "restore_best_weights), add dropout, or use a smaller model or more data.")
    if loss[-1] > (1 - 2 * THRESHOLD) * loss[0]:
        return Diagnosis("under-fit", f"the training loss hardly fell ({loss[0]:.4g} -> {loss[-1]:.4g}). The model "
                         "is not learning: raise the learning rate or the capacity, or check the data.")
    still = [name for name, series in (("training", loss), ("validation", val))
             if series is not None and _falling(series, tail) > THRESHOLD]
    if still:
        drops = ", ".join(f"{name} loss {100 * _falling(s, tail):.0f}%" for name, s in
                          (("training", loss), ("validation", val)) if name in still)
        return Diagnosis("under-fit", f"the curves are still falling over the last {tail} epoch(s) ({drops}). "
                         "Train for more epochs (or with a higher learning rate).")
    if val is None:
        return Diagnosis("good", f"the training loss fell from {loss[0]:.4g} to {loss[-1]:.4g} and has flattened. "
                         "(No validation loss: pass validation_data or validation_split to check over-fitting.)")
    return Diagnosis("good", f"both curves have flattened (training {loss[-1]:.4g}, validation {val[-1]:.4g}) and "
                     "the validation loss did not turn up.")


def _figure(size):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=100)


def history(history, *, title: str = "", file=None):
    """Draw the loss curves of ``history`` (from ``fit``) with the :func:`diagnose` verdict.

    Returns ``(figure, diagnosis)``.

    >>> fig, verdict = history({"loss": [1.0, 0.5, 0.4, 0.4], "val_loss": [1.1, 0.6, 0.5, 0.5]})
    >>> verdict.verdict
    'good'
    """
    loss, val = _curves(history)
    verdict = diagnose(history)
    fig = _figure((7, 4))
    ax = fig.add_subplot()
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, loss, label="training loss", color="tab:blue")
    if val is not None:
        ax.plot(epochs, val, label="validation loss", color="tab:orange")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.set_title((title + "\n" if title else "") + verdict.verdict, fontsize=10)
    fig.text(0.01, 0.01, verdict.reason, fontsize=7, wrap=True)
    fig.subplots_adjust(bottom=0.28)
    if file is not None:
        fig.savefig(file, format="png")
    return fig, verdict


def lstm_trace(layer, x) -> dict[str, np.ndarray]:
    """Run the LSTM ``layer`` over one sequence ``x (T, F)`` and record each step.

    Returns arrays of shape ``(T, H)`` named ``i``, ``f``, ``g``, ``o`` (the gates; a gate the
    variant lacks is all ones, a coupled forget gate is ``1 - i``), ``c`` (the cell state) and
    ``h`` (the output), all from the cell's own step (:meth:`lstmkit.cells.LSTMCell.step`).

    >>> from lstmkit.layers import LSTM
    >>> trace = lstm_trace(LSTM(3, input_size=2), np.zeros((5, 2), dtype="float32"))
    >>> sorted(trace), trace["c"].shape
    (['c', 'f', 'g', 'h', 'i', 'o'], (5, 3))
    """
    from lstmkit.cells.lstm import LSTMCell

    cell = getattr(layer, "cell", None)
    if not isinstance(cell, LSTMCell):
        raise TypeError(f"lstm_trace: `layer` must be a built lstmkit LSTM layer, got {type(layer).__name__}"
                        f"{' (not built yet: call it on an input first)' if cell is None else ''}.")
    x = torch.as_tensor(np.asarray(x), dtype=cell.weight_ih.dtype)
    if x.dim() == 3 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 2 or x.shape[1] != cell.input_size:
        raise ValueError(f"lstm_trace: `x` must be one sequence of shape (time, {cell.input_size}), got "
                         f"{tuple(x.shape)}.")
    record = {k: [] for k in "ifgoch"}
    state = cell.initial_state(1)
    with torch.no_grad():
        for t in range(x.shape[0]):
            h, state, gates = cell.step(x[t:t + 1], state)
            for k, value in (*gates.items(), ("c", state[1]), ("h", h)):
                record[k].append(value[0].numpy().copy())
    return {k: np.stack(values) for k, values in record.items()}


_PANELS = (("i", "input gate i", "viridis", (0, 1)), ("f", "forget gate f", "viridis", (0, 1)),
           ("o", "output gate o", "viridis", (0, 1)), ("c", "cell state c", "RdBu_r", None),
           ("h", "output h", "RdBu_r", (-1, 1)))


def gates(layer, x, *, labels=None, title: str = "", file=None):
    """Heatmaps of an LSTM layer's gates, cell state and output over the sequence ``x (T, F)``.

    One panel per quantity (i, f, o, c, h): time steps across, memory cells down. ``labels``
    names the time steps (e.g. the input symbols). Returns ``(figure, trace)`` with the trace
    from :func:`lstm_trace`.
    """
    trace = lstm_trace(layer, x)
    T, H = trace["c"].shape
    fig = _figure((2.2 * len(_PANELS) + 1, 0.22 * H + 2))
    axes = fig.subplots(1, len(_PANELS), sharey=True)
    for ax, (key, name, cmap, limits) in zip(axes, _PANELS):
        data = trace[key].T  # (H, T)
        if limits is None:
            bound = float(np.abs(data).max()) or 1.0
            limits = (-bound, bound)
        image = ax.imshow(data, aspect="auto", cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(T))
        ax.set_xticklabels([str(s) for s in labels] if labels is not None else range(T), fontsize=7)
        fig.colorbar(image, ax=ax, fraction=0.05)
    axes[0].set_ylabel("memory cell")
    if title:
        fig.suptitle(title, fontsize=10)
    if file is not None:
        fig.savefig(file, format="png")
    return fig, trace


def attention(weights, *, source_labels=None, target_labels=None, title: str = "", file=None):
    """Heatmap of attention weights ``(out_steps, S)`` for one sequence: output steps down, source across.

    >>> fig = attention(np.full((2, 3), 1 / 3))
    """
    weights = np.asarray(weights)
    if weights.ndim == 3 and weights.shape[0] == 1:
        weights = weights[0]
    if weights.ndim != 2:
        raise ValueError(f"attention: `weights` must be (out_steps, source_steps) for one sequence, got shape "
                         f"{weights.shape}.")
    fig = _figure((0.4 * weights.shape[1] + 2, 0.4 * weights.shape[0] + 1.5))
    ax = fig.add_subplot()
    image = ax.imshow(weights, cmap="Greys", vmin=0, vmax=1, aspect="auto")
    if source_labels is not None:
        ax.set_xticks(range(weights.shape[1]))
        ax.set_xticklabels([str(s) for s in source_labels], fontsize=7)
    if target_labels is not None:
        ax.set_yticks(range(weights.shape[0]))
        ax.set_yticklabels([str(s) for s in target_labels], fontsize=7)
    ax.set_xlabel("source step")
    ax.set_ylabel("output step")
    fig.colorbar(image, ax=ax)
    if title:
        ax.set_title(title, fontsize=10)
    if file is not None:
        fig.savefig(file, format="png")
    return fig
