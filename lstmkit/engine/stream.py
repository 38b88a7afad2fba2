"""Inference of the vanilla LSTM at small batches on the CPU, as one compiled call.

Streaming a model one step at a time (a forecaster fed live data, a generator sampling symbol by
symbol) costs per call what torch charges to set up its ops: ATen's fused cell op
``torch.lstm_cell`` is one dispatch but runs four small matrix products, ~40-60 us for an
``LSTM(64)`` on this machine, where the arithmetic is ~16k multiply-adds (docs/performance.md).
:func:`lstm_step` does the whole step in one compiled loop over the gate rows. A short sequence
at batch 1-4 is the same story: ``torch.lstm`` costs ~230-270 us for 10 steps of ``LSTM(64)``,
most of it set-up, where the compiled sweep (:func:`lstmkit.engine.jit.lstm_forward`), called
with the weights' arrays cached on the layer, takes 70-120 us.

:func:`stream_step` is the layer's shortcut: it answers a call of a vanilla ``LSTM`` without a
graph (``torch.no_grad`` or ``inference_mode``), on the CPU, in float32 or float64, with no mask
and no initial state passed in (the layer's carried state or zeros), for one step at any batch
size or a sequence at small batches, and returns None for anything else, which then takes the
ordinary engine path. Tests compare it with the reference loop in float64 and with
``torch.nn.LSTMCell`` and ``torch.nn.LSTM``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from lstmkit.cells.lstm import LSTMCell
from lstmkit.engine import jit
from lstmkit.engine.fused import _lstm_cfg


@jit.njit(cache=True, fastmath=True, error_model="numpy", nogil=True)
def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh, h_out, c_out):  # pragma: no cover - compiled
    """``h_out, c_out`` = one vanilla LSTM step from ``x (B, I)``, ``h, c (B, H)``; torch's gate
    order (i, f, g, o) and weight layout (``W_ih (4H, I)``, ``W_hh (4H, H)``).

    Arithmetic stays in the weights' dtype (a Python float constant would promote float32 to
    float64), and the gates go through the compiled engine's vectorised exp (``jit._exp``), with
    tanh(z) = 1 - 2 / (e^2z + 1).
    """
    B, I = x.shape
    H = c.shape[1]
    one = b_ih.dtype.type(1.0)
    two = b_ih.dtype.type(2.0)
    z = np.empty(4 * H, b_ih.dtype)
    e = np.empty(4 * H, b_ih.dtype)
    ec = np.empty(H, b_ih.dtype)
    for b in range(B):
        for r in range(4 * H):
            s = b_ih[r] + b_hh[r]
            for k in range(I):
                s += W_ih[r, k] * x[b, k]
            for k in range(H):
                s += W_hh[r, k] * h[b, k]
            z[r] = s
        for r in range(2 * H):  # exp arguments: -z for the sigmoids (i, f, o), 2z for tanh (g)
            z[r] = -z[r]
        for r in range(2 * H, 3 * H):
            z[r] = two * z[r]
        for r in range(3 * H, 4 * H):
            z[r] = -z[r]
        jit._exp(z, e)
        for j in range(H):
            i = one / (one + e[j])
            f = one / (one + e[H + j])
            g = one - two / (e[2 * H + j] + one)
            cj = f * c[b, j] + i * g
            c_out[b, j] = cj
            z[j] = two * cj
        jit._exp(z[:H], ec)
        for j in range(H):
            h_out[b, j] = (one / (one + e[3 * H + j])) * (one - two / (ec[j] + one))


_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _eligible(cell, engine: str) -> bool:
    """Whether this cell and engine choice can take the compiled step."""
    v = getattr(cell, "variant", None)
    return (jit.AVAILABLE and type(cell) is LSTMCell and engine in ("auto", "fused")
            and v.gates == ("i", "f", "g", "o") and not (v.peepholes or v.layer_norm or v.gate_recurrence)
            and v.input_activation == "tanh" and v.output_activation == "tanh" and not cell.proj_size
            and cell.weight_ih.device.type == "cpu" and cell.weight_ih.dtype in (torch.float32, torch.float64))


def _prepared(layer):
    """``(dtype, NumPy views of the weights)`` when the layer can take the compiled step, else None.

    Cached on the layer and checked on every call with plain dictionary reads (no
    ``nn.Module.__getattr__``): the same cell, engine, parameter objects and storages. The views
    share memory with the parameters, so in-place updates (optimizer steps, ``load_state_dict``)
    show through; ``layer.to(...)`` or new parameters rebuild them.
    """
    d = layer.__dict__
    cell = d["_modules"]["cell"]
    params = cell.__dict__["_parameters"]
    w_ih, w_hh, b_ih, b_hh = params["weight_ih"], params["weight_hh"], params["bias_ih"], params["bias_hh"]
    cached = d.get("_stream")
    if (cached is not None and cached[0] is cell and cached[1] == d["engine"] and cached[2] is w_ih
            and cached[3] is w_hh and cached[4] is b_ih and cached[5] is b_hh
            and cached[6] == (w_ih.data_ptr(), w_hh.data_ptr(), b_ih.data_ptr(), b_hh.data_ptr())):
        return cached[7]
    tensors = (w_ih, w_hh, b_ih, b_hh)
    ready = (w_ih.dtype, tuple(p.detach().numpy() for p in tensors)) if _eligible(cell, d["engine"]) else None
    d["_stream"] = (cell, d["engine"], *tensors, tuple(p.data_ptr() for p in tensors), ready)
    return ready


# Up to this batch size, and this many gate rows in all (B * 4H), a whole sequence of a vanilla
# LSTM runs through the compiled sweep (jit.lstm_forward) without a graph, from the layer's call
# straight to the kernel. Measured against oneDNN's torch.lstm on 2 threads (docs/performance.md):
# 0.26-0.44x its time at batch 1-4, LSTM(64), 10 steps; at batch 8 0.77x at 20 steps but 1.2x at
# 100; at batch 4 0.86x for H = 256 but 1.6x for H = 512, where each row's matrix-vector product
# runs on one thread against oneDNN's two-thread matrix product.
SEQUENCE_MAX_BATCH = 4
SEQUENCE_MAX_GATE_ROWS = 4096


def _sequence_weights(layer, weights):
    """``(W_hh^T, b_ih + b_hh, cfg)`` as NumPy arrays for :func:`jit.lstm_forward`: copies, cached on
    the layer and rebuilt when a parameter's storage or version changes (in-place updates bump
    it), so that they never go stale."""
    cell = layer.__dict__["_modules"]["cell"]
    params = cell.__dict__["_parameters"]
    w_hh, b_ih, b_hh = params["weight_hh"], params["bias_ih"], params["bias_hh"]
    key = (w_hh._version, b_ih._version, b_hh._version, w_hh.data_ptr(), b_ih.data_ptr(), b_hh.data_ptr())
    cached = layer.__dict__.get("_stream_seq")
    if cached is not None and cached[0] == key and cached[1][0].dtype == weights[0].dtype:
        return cached[1]
    arrays = (np.ascontiguousarray(weights[1].T), weights[2] + weights[3], _lstm_cfg(cell.variant, 0, False, False))
    layer.__dict__["_stream_seq"] = (key, arrays)
    return arrays


_DUMMIES = {}


def _dummies(dtype):
    """The placeholder arrays jit.lstm_forward takes for what a plain inference sweep does not use
    (shapes by rank, as _lstm_forward_jit passes them, so that the compiled signature is shared)."""
    if dtype not in _DUMMIES:
        one = lambda n: np.zeros((1,) * n, dtype)  # noqa: E731
        _DUMMIES[dtype] = (one(1), one(2), one(3), one(4), np.zeros((1, 1), np.bool_))
    return _DUMMIES[dtype]


def _sequence(layer, x, weights, h, c):
    """``(y (B, T, H), h, c)`` of a vanilla LSTM over ``x (B, T, I)`` from ``h, c`` (copied: the
    kernel updates its state arguments in place)."""
    B, T, I = x.shape
    dtype = weights[0].dtype
    W_hhT, bias, cfg = _sequence_weights(layer, weights)
    d1, d2, d3, d4, dmask = _dummies(dtype)
    zx = np.dot(x.reshape(B * T, I), weights[0].T)
    zx += bias
    h, c = h.copy(), c.copy()
    y = np.empty((B, T, h.shape[1]), dtype)
    jit.lstm_forward(cfg, zx.reshape(B, T, -1), W_hhT, d2, d1, d1, d1, d1, d1, d1, d1, d1, dmask, d2,
                     h, c, y, d4, d3, d3, d3, d3, d3, d2, d3, d2, d3, False)
    return y, h, c


def stream_step(layer, x: torch.Tensor):
    """The layer's output for ``x (B, T, I)`` through :func:`lstm_step` (one step) or the compiled
    sweep (a sequence, at most ``SEQUENCE_MAX_BATCH`` rows and ``SEQUENCE_MAX_GATE_ROWS`` gate
    rows), or None when the call or the layer is not one it covers (the caller then runs the
    engine as usual)."""
    d = layer.__dict__
    if d["training"] and (d["dropout"] or d["recurrent_dropout"]):
        return None
    B, T = x.shape[0], x.shape[1]
    if T > 1 and (B > SEQUENCE_MAX_BATCH or B * 4 * d["units"] > SEQUENCE_MAX_GATE_ROWS or d["go_backwards"]):
        return None
    ready = _prepared(layer)
    if ready is None:
        return None
    weights = ready[1]
    if not x.is_cpu or x.dtype != ready[0] or x.shape[2] != weights[0].shape[1] or torch.is_autocast_enabled("cpu"):
        return None
    H = d["units"]
    states = d["_states"] if d["stateful"] else None
    if states is None:
        h = c = np.zeros((B, H), dtype=weights[0].dtype)
    elif states[0].shape[0] != B:
        return None  # the engine path explains the batch-size mismatch
    else:
        mine = d.get("_stream_state")  # the arrays behind the state this shortcut stored last
        if mine is not None and mine[0] is states:
            h, c = mine[1], mine[2]
        else:
            h, c = states[0].detach().numpy(), states[1].detach().numpy()
    # C-contiguous: a strided view costs ~5 us more in numba's dispatch
    xs = (x.detach() if x.requires_grad else x).numpy()
    if T == 1:
        h_np = np.empty((B, H), dtype=weights[0].dtype)
        c_np = np.empty((B, H), dtype=weights[0].dtype)
        lstm_step(xs.reshape(B, -1), h, c, *weights, h_np, c_np)
        y_np = h_np.reshape(B, 1, H)
    else:
        y_np, h_np, c_np = _sequence(layer, np.ascontiguousarray(xs), weights, h, c)
    # Tensors straight from the arrays: torch's own view ops (unbind, unsqueeze) cost ~2-4 us each
    h_new, c_new = torch.from_numpy(h_np), torch.from_numpy(c_np)
    d["_last_engine"] = "fused"
    if d["stateful"]:
        d["_states"] = state = (h_new, c_new)
        d["_stream_state"] = (state, h_np, c_np)
    y = torch.from_numpy(y_np) if d["return_sequences"] else h_new
    return (y, h_new, c_new) if d["return_state"] else y
