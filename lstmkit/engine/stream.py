"""Inference of the LSTM, its variants, the GRU and the Elman RNN at small batches on the CPU, in
one compiled call.

Streaming a model one step at a time (a forecaster fed live data, a generator sampling symbol by
symbol) costs per call what torch charges to set up its ops: ATen's fused cell op
``torch.lstm_cell`` is one dispatch but runs four small matrix products, ~40-60 us for an
``LSTM(64)`` on this machine, where the arithmetic is ~16k multiply-adds (docs/performance.md).
:func:`lstm_step` does the whole step in one compiled loop over the gate rows. A short sequence
at batch 1-4 is the same story: ``torch.lstm`` costs ~230-270 us for 10 steps of ``LSTM(64)``,
most of it set-up, where :func:`lstm_sequence` (the input term for all steps as one product,
then a compiled loop, one matrix-vector product per row and step), called straight
from the layer, takes 50-130 us.

:func:`gru_sequence` does the same for the GRU, :func:`rnn_sequence` for the Elman RNN (10 steps
of ``SimpleRNN(64)`` 0.22x of the torch sweep it ran before); :func:`gru_step` and
:func:`rnn_step` are their single steps, input term included (0.57x and 0.43x of a step through
the sequence kernels, alternated). Every other LSTM variant (peepholes, the coupled gate, the Greff et al.
ablations, layer norm, a projection; not gate recurrence) runs the fused path's forward kernel,
``jit.lstm_forward``, with nothing saved (:func:`_variant`): a peephole ``LSTM(64)`` step in
45-85 us against 240-290 through its own cell step.

:func:`stream_step` is the layer's shortcut: it answers a call of an ``LSTM``, a ``GRU`` or a
``SimpleRNN`` without a graph (``torch.no_grad`` or ``inference_mode``), on the CPU, in float32 or float64,
with no mask and no initial state passed in (the layer's carried state or zeros): a vanilla
LSTM step at any batch size, a sequence (or any GRU, Elman or variant call) at small batches. A
carried state it made it updates in place (reading it through ``layer.states`` hands it over
for good), and the next step of such a stream takes :func:`_next_step`, which checks only what can
change between two steps, called from the layer's own ``__call__`` (:func:`next_call`) wherever
``nn.Module.__call__`` would do nothing more. It returns None for anything else, which then
takes the ordinary engine path. Tests compare it with the reference loop in float64 and with
``torch.nn.LSTMCell``, ``torch.nn.LSTM``, ``torch.nn.GRU`` and ``torch.nn.RNN``.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
from torch.nn.modules import module as _torch_module

from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.rnn import RNNCell
from lstmkit.engine import fused, jit


@jit.njit(cache=True, fastmath=True, error_model="numpy", nogil=True)
def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh, h_out, c_out, h_keep):  # pragma: no cover - compiled
    """``h_out, c_out`` = one vanilla LSTM step from ``x (B, 1, I)``, ``h, c (B, H)``; torch's gate
    order (i, f, g, o) and weight layout (``W_ih (4H, I)``, ``W_hh (4H, H)``). The new h also goes
    into ``h_keep``, which may be ``h`` itself (a row of h is read whole before it is written):
    the carried state updated without a copy after the call.

    Arithmetic stays in the weights' dtype (a Python float constant would promote float32 to
    float64), and the gates go through the compiled engine's vectorised exp (``jit._exp``), with
    tanh(z) = 1 - 2 / (e^2z + 1). Its gate algebra is :func:`lstm_sequence`'s, kept apart because a
    single step through that (its input product in NumPy first) cost 15-16 against 7 us.
    """
    B, _, I = x.shape
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
                s += W_ih[r, k] * x[b, 0, k]
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
            hj = (one / (one + e[3 * H + j])) * (one - two / (ec[j] + one))
            h_out[b, j] = hj
            h_keep[b, j] = hj


@jit.njit(cache=True, fastmath=True, error_model="numpy", nogil=True)
def gru_step(x, h, W_ih, W_hh, b_ih, b_hh, reset_after, h_out, h_keep):  # pragma: no cover - compiled
    """``h_out`` = one GRU step from ``x (B, 1, I)``, ``h (B, H)`` (torch's gate order r, z, n and
    weight layout); the new h also into ``h_keep``, which may be ``h`` (as :func:`lstm_step`).
    ``reset_after`` as :func:`gru_sequence`. One compiled call, the input term included: the
    step through ``gru_sequence`` (its input term in NumPy first) took 1.7x as long
    (docs/performance.md)."""
    B, _, I = x.shape
    H = h.shape[1]
    one = b_ih.dtype.type(1.0)
    two = b_ih.dtype.type(2.0)
    zi = np.empty(3 * H, b_ih.dtype)
    a = np.empty(3 * H, b_ih.dtype)
    e = np.empty(3 * H, b_ih.dtype)
    rh = np.empty(H, b_ih.dtype)
    for b in range(B):
        for r in range(3 * H):  # the input term, b_ih included
            s = b_ih[r]
            for k in range(I):
                s += W_ih[r, k] * x[b, 0, k]
            zi[r] = s
        for r in range(2 * H):  # exp(-z) for the sigmoids r and z
            s = zi[r] + b_hh[r]
            for k in range(H):
                s += W_hh[r, k] * h[b, k]
            a[r] = -s
        jit._exp(a[:2 * H], e[:2 * H])
        if reset_after:  # r scales W_hn h + b_hn
            for j in range(H):
                s = b_hh[2 * H + j]
                for k in range(H):
                    s += W_hh[2 * H + j, k] * h[b, k]
                a[2 * H + j] = two * (zi[2 * H + j] + s / (one + e[j]))
        else:  # r scales h before the product
            for k in range(H):
                rh[k] = h[b, k] / (one + e[k])
            for j in range(H):
                s = b_hh[2 * H + j]
                for k in range(H):
                    s += W_hh[2 * H + j, k] * rh[k]
                a[2 * H + j] = two * (zi[2 * H + j] + s)
        jit._exp(a[2 * H:], e[2 * H:])  # exp(2 z) for tanh
        for j in range(H):
            n = one - two / (e[2 * H + j] + one)
            z = one / (one + e[H + j])
            h_out[b, j] = n + z * (h[b, j] - n)
        for j in range(H):  # after the row is read whole: h_keep may be h
            h_keep[b, j] = h_out[b, j]


# fastmath without "nnan", as rnn_sequence below
@jit.njit(cache=True, fastmath=jit._RNN_FASTMATH, error_model="numpy", nogil=True)
def rnn_step(x, h, W_ih, W_hh, b_ih, b_hh, relu, h_out, h_keep):  # pragma: no cover - compiled
    """``h_out`` = one Elman RNN step from ``x (B, 1, I)``, ``h (B, H)``: tanh, or relu where
    ``relu``; the new h also into ``h_keep``, which may be ``h`` (as :func:`lstm_step`)."""
    B, _, I = x.shape
    H = h.shape[1]
    one = b_ih.dtype.type(1.0)
    two = b_ih.dtype.type(2.0)
    zero = b_ih.dtype.type(0.0)
    a = np.empty(H, b_ih.dtype)
    e = np.empty(H, b_ih.dtype)
    for b in range(B):
        for r in range(H):
            s = b_ih[r] + b_hh[r]
            for k in range(I):
                s += W_ih[r, k] * x[b, 0, k]
            for k in range(H):
                s += W_hh[r, k] * h[b, k]
            a[r] = s
        if relu:
            for j in range(H):
                v = a[j]
                h_out[b, j] = zero if v < zero else v  # NaN < 0 is false: NaN stays NaN
        else:
            for j in range(H):  # tanh(v) = 1 - 2 / (e^2v + 1)
                a[j] = two * a[j]
            jit._exp(a, e)
            for j in range(H):
                h_out[b, j] = one - two / (e[j] + one)
        for j in range(H):
            h_keep[b, j] = h_out[b, j]


@jit.njit(cache=True, fastmath=True, error_model="numpy", nogil=True)
def lstm_sequence(zx, h, c, W_hh, y, h_out, c_out):  # pragma: no cover - compiled
    """The vanilla LSTM over ``zx (B, T, 4H)``, each step's input term with both biases (torch's
    gate order): ``y (B, T, H)`` receives every step's h, ``h_out, c_out`` the final state.
    Step by step over the batch, each row's recurrent term one matrix-vector product with
    ``W_hh (4H, H)`` as it is (no transposed copy that could go stale or cost a copy)."""
    B, T, G = zx.shape
    H = c.shape[1]
    one = W_hh.dtype.type(1.0)
    two = W_hh.dtype.type(2.0)
    zh = np.empty(G, W_hh.dtype)
    z = np.empty(G, W_hh.dtype)
    e = np.empty(G, W_hh.dtype)
    ec = np.empty(H, W_hh.dtype)
    hs = h.copy()
    cs = c.copy()
    for t in range(T):  # every sequence's step t in turn: W_hh stays in cache across the batch
        for b in range(B):
            hb, cb = hs[b], cs[b]
            np.dot(W_hh, hb, zh)
            zt = zx[b, t]
            for r in range(2 * H):  # exp arguments: -z for the sigmoids (i, f, o), 2z for tanh (g)
                z[r] = -(zt[r] + zh[r])
            for r in range(2 * H, 3 * H):
                z[r] = two * (zt[r] + zh[r])
            for r in range(3 * H, 4 * H):
                z[r] = -(zt[r] + zh[r])
            jit._exp(z, e)
            for j in range(H):
                i = one / (one + e[j])
                f = one / (one + e[H + j])
                g = one - two / (e[2 * H + j] + one)
                cj = f * cb[j] + i * g
                cb[j] = cj
                z[j] = two * cj
            jit._exp(z[:H], ec)
            yt = y[b, t]
            for j in range(H):
                hj = (one / (one + e[3 * H + j])) * (one - two / (ec[j] + one))
                hb[j] = hj
                yt[j] = hj
    for b in range(B):
        for j in range(H):
            h_out[b, j] = hs[b, j]
            c_out[b, j] = cs[b, j]


@jit.njit(cache=True, fastmath=True, error_model="numpy", nogil=True)
def gru_sequence(zx, h, W_hh, b_hh, reset_after, y, h_out):  # pragma: no cover - compiled
    """The GRU over ``zx (B, T, 3H)``, each step's input term with ``b_ih`` (torch's gate order
    r, z, n and weight layout): ``y (B, T, H)`` receives every step's h, ``h_out`` the final one.
    With ``reset_after`` the reset gate scales ``W_hn h + b_hn`` (torch's GRU), else it scales
    h before that product (the original paper's form). As :func:`lstm_sequence`: one or two
    matrix-vector products per row and step with ``W_hh`` as it is."""
    B, T, G = zx.shape
    H = h.shape[1]
    one = W_hh.dtype.type(1.0)
    two = W_hh.dtype.type(2.0)
    W_rz, W_n = W_hh[:2 * H], W_hh[2 * H:]
    zh = np.empty(G, W_hh.dtype)
    a = np.empty(G, W_hh.dtype)
    e = np.empty(G, W_hh.dtype)
    rh = np.empty(H, W_hh.dtype)
    hs = h.copy()
    for t in range(T):  # every sequence's step t in turn: W_hh stays in cache across the batch
        for b in range(B):
            hb = hs[b]
            zt = zx[b, t]
            np.dot(W_rz, hb, zh[:2 * H])
            for k in range(2 * H):  # exp(-z) for the sigmoids r and z
                a[k] = -(zt[k] + zh[k] + b_hh[k])
            jit._exp(a[:2 * H], e[:2 * H])
            if reset_after:
                np.dot(W_n, hb, zh[2 * H:])
                for j in range(H):
                    a[2 * H + j] = two * (zt[2 * H + j] + (zh[2 * H + j] + b_hh[2 * H + j]) / (one + e[j]))
            else:
                for j in range(H):
                    rh[j] = hb[j] / (one + e[j])
                np.dot(W_n, rh, zh[2 * H:])
                for j in range(H):
                    a[2 * H + j] = two * (zt[2 * H + j] + zh[2 * H + j] + b_hh[2 * H + j])
            jit._exp(a[2 * H:], e[2 * H:])  # exp(2 z) for tanh
            yt = y[b, t]
            for j in range(H):
                n = one - two / (e[2 * H + j] + one)
                z = one / (one + e[H + j])
                hj = n + z * (hb[j] - n)
                hb[j] = hj
                yt[j] = hj
    for b in range(B):
        for j in range(H):
            h_out[b, j] = hs[b, j]


# fastmath without "nnan" (jit._RNN_FASTMATH): relu must pass a NaN on as torch's does (with it
# the compiler may drop the comparison's NaN case, and a NaN input came out as 0)
@jit.njit(cache=True, fastmath=jit._RNN_FASTMATH, error_model="numpy", nogil=True)
def rnn_sequence(zx, h, W_hh, relu, y, h_out):  # pragma: no cover - compiled
    """The Elman RNN over ``zx (B, T, H)``, each step's input term with both biases: ``y (B, T, H)``
    receives every step's h, ``h_out`` the final one; tanh, or relu where ``relu``. As
    :func:`lstm_sequence`: one matrix-vector product per row and step with ``W_hh`` as it is."""
    B, T, H = zx.shape
    one = W_hh.dtype.type(1.0)
    two = W_hh.dtype.type(2.0)
    zero = W_hh.dtype.type(0.0)
    zh = np.empty(H, W_hh.dtype)
    a = np.empty(H, W_hh.dtype)
    e = np.empty(H, W_hh.dtype)
    hs = h.copy()
    for t in range(T):  # every sequence's step t in turn: W_hh stays in cache across the batch
        for b in range(B):
            hb, zt, yt = hs[b], zx[b, t], y[b, t]
            np.dot(W_hh, hb, zh)
            if relu:
                for j in range(H):
                    v = zt[j] + zh[j]
                    a[j] = zero if v < zero else v  # NaN < 0 is false: NaN stays NaN
            else:
                for j in range(H):  # tanh(v) = 1 - 2 / (e^2v + 1)
                    e[j] = two * (zt[j] + zh[j])
                jit._exp(e, a)
                for j in range(H):
                    a[j] = one - two / (a[j] + one)
            for j in range(H):
                hb[j] = a[j]
            for j in range(H):
                yt[j] = a[j]
    for b in range(B):
        for j in range(H):
            h_out[b, j] = hs[b, j]


def _eligible(cell, engine: str) -> str | None:
    """``"lstm"`` (the vanilla LSTM: its own kernels), ``"variant"`` (any other LSTM variant but
    gate recurrence, a projection included: the fused path's forward kernel) or ``"gru"`` where
    this cell and engine choice can take the compiled kernels, else None. Exact types: a
    subclass (or a parametrized cell, which torch gives a class of its own) may compute
    something else."""
    if type(cell) is GRUCell:
        kind = "gru"
    elif type(cell) is RNNCell:
        kind = "rnn"
    elif type(cell) is LSTMCell and not cell.variant.gate_recurrence:
        v = cell.variant
        vanilla = (v.gates == ("i", "f", "g", "o") and not (v.peepholes or v.layer_norm)
                   and v.input_activation == "tanh" and v.output_activation == "tanh" and not cell.proj_size)
        kind = "lstm" if vanilla else "variant"
    else:
        return None  # any other cell (a subclass's, or one of a layer built on Recurrent) runs its engine
    if not (fused.JIT_ENABLED and engine in ("auto", "fused") and cell.weight_ih.device.type == "cpu"
            and cell.weight_ih.dtype in (torch.float32, torch.float64)):
        return None
    return kind


_OPTIONAL = ("weight_ci", "weight_cf", "weight_co", "ln_hh_weight", "ln_c_weight", "ln_c_bias", "ln_ih_weight")
_MAIN = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
_KNOWN = _MAIN | {"weight_hr", "weight_gr", *_OPTIONAL}  # every parameter a cell registers itself


def _prepared(layer):
    """``(dtype, NumPy views of W_ih, W_hh, b_ih, b_hh, kind, extra)`` when the layer can take the
    compiled kernels, else None; ``kind`` as :func:`_eligible`, ``extra`` the GRU's reset_after
    or a variant's kernel configuration and further weights.

    Cached on the layer and checked on every call with plain dictionary reads (no
    ``nn.Module.__getattr__``): the same cell, engine, parameter names, objects and storages. The views
    share memory with the parameters, so in-place updates (optimizer steps, ``load_state_dict``)
    show through; ``layer.to(...)`` or new parameters rebuild them.
    """
    d = layer.__dict__
    cell = d["_modules"].get("cell")
    if cell is None:
        return None  # not built yet
    cached = d.get("_stream")
    if cached is not None and _current(d, cell, cached):
        return cached[4]
    cd = cell.__dict__
    params = cd["_parameters"]
    tensors = tuple(params.values())
    if any(t is None or t.is_neg() for t in tensors):
        return None  # a parameter set to None (the engine path says what it makes of that), or
        # one with torch's negative bit (a view of z.conj().imag): no NumPy view can share it
    kind = _eligible(cell, d["engine"])
    ready = None
    # Pruning, spectral_norm and the old weight_norm rename a weight (weight_hh_orig, ...) and
    # hook the cell's call to make it, a call the kernels never make: the engine path runs those.
    if kind is not None and (not set(params) <= _KNOWN or not _MAIN <= set(params) or _hooked(cd)):
        kind = None
    if kind is not None:
        main = tuple(params[name].detach().numpy() for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        extra = getattr(cell, "reset_after", True) if kind == "gru" else getattr(cell, "nonlinearity", "") == "relu"
        if kind == "variant":
            npdt = main[0].dtype
            v = cell.variant
            opt = tuple(params[name].detach().numpy() if name in params else fused._dummy(1, npdt)
                        for name in _OPTIONAL)
            W_hr = params["weight_hr"].detach().numpy() if cell.proj_size else None
            extra = (fused._lstm_cfg(v, cell.proj_size, False, False), opt, W_hr, v.layer_norm)
        ready = (cell.weight_ih.dtype, main, kind, extra)
    # tensors[i].detach(): an alias with the parameter's memory and layout as of now, which a
    # `.data =` swap (new storage, or a view of the same memory laid out otherwise) does not follow
    d["_stream"] = (cell, d["engine"], tensors, tuple(t.detach() for t in tensors), ready, _settings(cd),
                    tuple(params))
    return ready


def _hooked(cd: dict) -> bool:
    """Whether a cell (its ``__dict__``) has hooks on its call, which the kernels never make."""
    return bool(cd["_forward_pre_hooks"] or cd["_forward_hooks"])


_is_set_to = torch.Tensor.is_set_to  # the same storage, offset, sizes and strides


def _settings(cd: dict) -> tuple:
    """The settings of a cell (its ``__dict__``) the kernels read, which a user may change on a
    built cell (:func:`_current` writes the same out)."""
    return cd.get("reset_after"), cd.get("nonlinearity"), cd.get("variant"), cd.get("proj_size")


def _current(d: dict, cell, cached: tuple) -> bool:
    """Whether ``cached`` (the layer's ``_stream`` entry; ``d`` the layer's ``__dict__``) still
    describes ``cell``: the same cell, engine, parameter names, objects, memory and layout,
    settings, and no hooks on the cell's call."""
    if cached[0] is not cell or cached[1] != d["engine"]:
        return False
    cd = cell.__dict__
    params = cd["_parameters"]
    # (checked on every step of a stream: the helpers above written out, the same names first)
    return (tuple(params) == cached[6] and all(map(operator.is_, params.values(), cached[2]))
            and all(map(_is_set_to, cached[2], cached[3]))
            and cached[5] == (cd.get("reset_after"), cd.get("nonlinearity"), cd.get("variant"), cd.get("proj_size"))
            and not (cd["_forward_pre_hooks"] or cd["_forward_hooks"]))


# Up to this batch size, this many units and this many gate rows in all (B * 4H), a whole
# sequence of a vanilla LSTM runs through :func:`lstm_sequence` without a graph, from the layer's
# call straight to the kernel. Measured against oneDNN's torch.lstm on 2 threads
# (docs/performance.md): 0.24-0.46x its time at batch 1-4, LSTM(64), 10 steps; at batch 8 0.65x
# at 20 steps but 1.1x at 100; 0.51x at (1, 256), 0.9x at (4, 256), 0.63x at (1, 512), but 1.47x
# at (1, 1024), where each step's matrix-vector product streams a 16 MB W_hh on one thread.
SEQUENCE_MAX_BATCH = 4
SEQUENCE_MAX_UNITS = 512
SEQUENCE_MAX_GATE_ROWS = 4096


def _input_term(x, W_ih, *biases):
    """Every step's input term at once, ``x (B, T, I) @ W_ih^T`` plus ``biases``, as (B, T, G)."""
    B, T, I = x.shape
    zx = np.dot(x.reshape(B * T, I), W_ih.T)
    for b in biases:
        zx += b
    return zx.reshape(B, T, -1)


def _sequence(x, weights, h, c, h_out, c_out):
    """``y (B, T, H)`` of a vanilla LSTM over ``x (B, T, I)`` from ``h, c``, the final state into
    ``h_out, c_out``; ``weights`` are NumPy views of the parameters, read where they are."""
    W_ih, W_hh, b_ih, b_hh = weights
    y = np.empty((x.shape[0], x.shape[1], W_hh.shape[1]), W_hh.dtype)
    lstm_sequence(_input_term(x, W_ih, b_ih, b_hh), h, c, W_hh, y, h_out, c_out)
    return y


def _rnn(x, weights, h, relu, h_out):
    """``y (B, T, H)`` of the Elman RNN over ``x (B, T, I)`` from ``h``; as :func:`_sequence`."""
    W_ih, W_hh, b_ih, b_hh = weights
    y = np.empty((x.shape[0], x.shape[1], W_hh.shape[1]), W_hh.dtype)
    rnn_sequence(_input_term(x, W_ih, b_ih, b_hh), h, W_hh, relu, y, h_out)
    return y


def _gru(x, weights, h, reset_after, h_out):
    """``y (B, T, H)`` of the GRU over ``x (B, T, I)`` from ``h``; as :func:`_sequence` (``b_hh``
    goes inside the kernel, where the reset gate scales part of it)."""
    W_ih, W_hh, b_ih, b_hh = weights
    y = np.empty((x.shape[0], x.shape[1], W_hh.shape[1]), W_hh.dtype)
    gru_sequence(_input_term(x, W_ih, b_ih), h, W_hh, b_hh, reset_after, y, h_out)
    return y


def _variant(x, weights, extra, h, c):
    """``y (B, T, P)`` of any other LSTM variant over ``x (B, T, I)`` through the fused path's
    forward kernel (``jit.lstm_forward``, nothing saved), which leaves the final state in
    ``h, c`` (updated in place)."""
    W_ih, W_hh, b_ih, b_hh = weights
    cfg, opt, W_hr, layer_norm = extra
    if layer_norm:  # the kernel normalises the products, then adds the biases
        zx, bias = _input_term(x, W_ih), b_ih + b_hh
    else:
        zx, bias = _input_term(x, W_ih, b_ih, b_hh), fused._dummy(1, W_hh.dtype)
    y = np.empty((x.shape[0], x.shape[1], h.shape[1]), W_hh.dtype)
    d2, d3 = fused._dummy(2, W_hh.dtype), fused._dummy(3, W_hh.dtype)
    jit.lstm_forward(cfg, zx, W_hh, d2 if W_hr is None else W_hr, *opt, bias,
                     fused._dummy(2, np.bool_), d2, h, c, y, fused._dummy(4, W_hh.dtype), d3, d3, d3, d3, d3,
                     d2, d3, d2, d3, False)
    return y


def _next_step(d: dict, x: torch.Tensor, mine: tuple):
    """The next step of a stream: a stateful vanilla LSTM, GRU or Elman RNN in evaluation mode,
    called one step at a time, whose last call made the plan ``mine[3]`` (``d`` the layer's
    ``__dict__``, ``mine`` its ``_stream_state``). Only what can change between two such calls
    is checked again (the carried state, the input's shape and dtype, the layer's flags, the
    weights); None when anything differs, and :func:`stream_step` decides afresh. An
    ``LSTM(64)`` step 0.87x-0.88x of one through all of :func:`stream_step`'s checks
    (docs/performance.md)."""
    shape, dtype, flags, cached = mine[3]
    if (d["_states"] is not mine[0] or x.shape != shape or x.dtype != dtype or not x.is_cpu
            or (d["training"], d["stateful"], d["return_sequences"], d["return_state"]) != flags
            or not _current(d, d["_modules"].get("cell"), cached) or torch.is_autocast_enabled("cpu")):
        return None
    try:
        xs = x.numpy()
    except RuntimeError:  # torch's negative bit (a view of z.conj().imag): stream_step reads a copy
        return None
    h, c = mine[1], mine[2]
    h_np = np.empty(h.shape, h.dtype)
    _, weights, kind, extra = cached[4]
    if kind == "lstm":
        lstm_step(xs, h, c, *weights, h_np, c, h)
    elif kind == "gru":
        gru_step(xs, h, *weights, extra, h_np, h)
    else:
        rnn_step(xs, h, *weights, extra, h_np, h)
    d["_last_engine"] = "fused"
    return torch.from_numpy(h_np.reshape(shape[0], 1, -1) if flags[2] else h_np)


_profiling = torch._C._autograd._profiler_enabled  # torch.profiler: it records nn.Module.__call__

# torch's hooks on every module's call (torch.nn.modules.module): registering one adds to these
# dicts in place, so holding them here sees every later registration
_GLOBAL_CALL_HOOKS = (_torch_module._global_forward_pre_hooks, _torch_module._global_forward_hooks,
                      _torch_module._global_backward_pre_hooks, _torch_module._global_backward_hooks)


def next_call(layer, x, mine: tuple):
    """``layer(x)`` for the next step of a stream, from the layer's own ``__call__`` without
    ``nn.Module.__call__``, or None, and the call goes the usual way. ``mine`` is the layer's
    ``_stream_state`` with a plan (``mine[3]``).

    It answers only where that way would end in :func:`_next_step` too, with nothing run on
    the way: no graph being recorded, an exact tensor, no hooks on this layer's call or on every
    module's, no ``module.compile()``, no profiler (which records the module's call), no trace,
    ``torch.compile``, ``torch.func`` transform or dispatch mode. Skipping
    ``nn.Module.__call__`` and ``forward``'s preamble took 0.91x-0.98x of an ``LSTM(64)`` or
    ``GRU(64)`` step through them, with these checks (docs/performance.md)."""
    d = layer.__dict__
    if (torch.is_grad_enabled() or type(x) is not torch.Tensor or d["_forward_pre_hooks"] or d["_forward_hooks"]
            or d["_backward_pre_hooks"] or d["_backward_hooks"] or any(_GLOBAL_CALL_HOOKS)
            or d.get("_compiled_call_impl") is not None or _profiling() or fused.torch_ops_only()):
        return None
    return _next_step(d, x, mine)


def _readable(t: torch.Tensor) -> np.ndarray:
    """``t``'s values as a NumPy array: a view, or a copy where ``t`` carries torch's negative
    bit (a view of ``z.conj().imag``), which NumPy cannot see."""
    return t.resolve_neg().numpy() if t.is_neg() else t.numpy()


def stream_step(layer, x: torch.Tensor):
    """The layer's output for ``x (B, T, I)`` through the compiled kernels, or None when the call
    or the layer is not one they cover (the caller then runs the engine as usual).

    A vanilla LSTM takes :func:`lstm_step` for one step at any batch size and :func:`lstm_sequence`
    for a sequence; a GRU takes :func:`gru_sequence`, an Elman RNN :func:`rnn_sequence`, any other
    LSTM variant the fused path's forward kernel (:func:`_variant`), for either. Sequences (and
    every GRU, Elman or variant call) only up to ``SEQUENCE_MAX_BATCH`` rows,
    ``SEQUENCE_MAX_UNITS`` units and ``SEQUENCE_MAX_GATE_ROWS`` gate rows, where the kernels beat
    torch's ops."""
    d = layer.__dict__
    mine = d.get("_stream_state")
    if mine is not None and mine[3] is not None:
        out = _next_step(d, x, mine)
        if out is not None:
            return out
    if d["training"] and (d["dropout"] or d["recurrent_dropout"]):
        return None
    shape = x.shape
    if len(shape) != 3 or not (shape[0] and shape[1]):
        return None  # the engine path's checks explain it
    B, T = shape[0], shape[1]
    small = not (B > SEQUENCE_MAX_BATCH or d["units"] > SEQUENCE_MAX_UNITS
                 or B * 4 * d["units"] > SEQUENCE_MAX_GATE_ROWS or d["go_backwards"])
    if T > 1 and not small:
        return None
    ready = _prepared(layer)
    if ready is None:
        return None
    dtype, weights, kind, extra = ready
    lstm, single = kind == "lstm", kind in ("gru", "rnn")  # single: a state (h,) alone
    if not (lstm or small):
        return None
    if not x.is_cpu or x.dtype != dtype or shape[2] != weights[0].shape[1] or torch.is_autocast_enabled("cpu"):
        return None
    H, P = d["units"], weights[1].shape[1]  # P: the output size (a variant's projection)
    npdt = weights[0].dtype
    stateful = d["stateful"]
    states = d["_states"] if stateful else None
    owned = False  # whether h, c are the arrays of a carried state this shortcut made: updated in place
    if states is None:
        h = np.zeros((B, P), dtype=npdt)
        c = None if single else np.zeros((B, H), dtype=npdt)
    elif states[0].shape[0] != B or states[0].dtype != dtype or type(states[0]) is not torch.Tensor:
        return None  # the engine path explains the batch-size or dtype mismatch (or runs a subclass's ops)
    else:
        if mine is not None and mine[0] is states:
            h, c = mine[1], mine[2]
            owned = True
        else:  # a state from elsewhere (the engine path, the `states` setter): read, never written
            h = _readable(states[0].detach())
            c = None if single else _readable(states[1].detach())
    # C-contiguous: a strided view costs ~5 us more in numba's dispatch
    xs = _readable(x.detach() if x.requires_grad else x)
    if kind == "variant":
        if states is not None and not owned:  # its kernel leaves the final state in h, c
            h, c = h.copy(), c.copy()
        y_np = _variant(np.ascontiguousarray(xs), weights, extra, h, c)
        h_np, c_np = y_np[:, -1].copy(), c  # the final h: contiguous, apart from the output and the carried h
        keep = (h, c)
    else:
        # the new h into an array of its own (it is also the output); the new c straight into
        # the carried array where this shortcut owns one (each element of c is read before it is
        # written, and lstm_sequence copies its initial state first)
        h_np = np.empty((B, H), dtype=npdt)
        c_np = c if owned else (None if single else np.empty((B, H), dtype=npdt))
        owned_h_updated = False  # whether the kernel wrote the new h into the carried one too
        if T == 1:
            if kind == "gru":
                gru_step(xs, h, *weights, extra, h_np, h if owned else h_np)
            elif kind == "rnn":
                rnn_step(xs, h, *weights, extra, h_np, h if owned else h_np)
            else:
                lstm_step(xs, h, c, *weights, h_np, c_np, h if owned else h_np)
            owned_h_updated = True
            # the output is h; with both the sequence and the state returned, two arrays
            if d["return_sequences"]:
                y_np = h_np.reshape(B, 1, H) if not d["return_state"] else h_np[:, None].copy()
        elif kind == "gru":
            y_np = _gru(np.ascontiguousarray(xs), weights, h, extra, h_np)
        elif kind == "rnn":
            y_np = _rnn(np.ascontiguousarray(xs), weights, h, extra, h_np)
        else:
            y_np = _sequence(np.ascontiguousarray(xs), weights, h, c, h_np, c_np)
        if owned:
            if not owned_h_updated:
                np.copyto(h, h_np)
        elif stateful:
            keep = (h_np.copy(), c_np)
    d["_last_engine"] = "fused"
    if stateful:
        if not owned:
            d["_states"] = state = tuple(torch.from_numpy(a) for a in keep if a is not None)
            d["_stream_state"] = mine = (state, *keep, None)
        if T == 1 and kind != "variant" and not d["training"] and not d["return_state"]:
            # the next step of the same stream takes the short way (_next_step)
            d["_stream_state"] = (*mine[:3], (shape, dtype, (False, True, d["return_sequences"], False), d["_stream"]))
        if c_np is not None and d["return_state"]:
            c_np = c_np.copy()  # a returned state must not change with the carried one
    # Tensors straight from the arrays: torch's own view ops (unbind, unsqueeze) cost ~2-4 us each
    h_t = torch.from_numpy(h_np)
    if not d["return_state"]:
        return torch.from_numpy(y_np) if d["return_sequences"] else h_t
    final = (h_t,) if single else (h_t, torch.from_numpy(c_np))
    return (torch.from_numpy(y_np) if d["return_sequences"] else h_t, *final)
