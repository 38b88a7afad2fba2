"""The fused path: one input projection for all steps, a tight recurrent loop, hand-derived BPTT.

Each family has a ``torch.autograd.Function`` whose forward runs the recurrence saving only what
the backward needs, and whose backward walks the sequence in reverse, computing the gradient of
every pre-activation at each step (the derivation is in ``docs/bptt.md``). The weight gradients
are then one matrix product each over all steps, after the loop:
``dW_ih = dZ^T X``, ``dW_hh = dZ_h^T H_{t-1}``.

Shape: B batch, T steps, I inputs, H hidden, P = proj_size or H, G gate blocks.
Masks: ``mask (B, T)`` bool (False = the step is skipped: state unchanged, output zero);
``recurrent_mask (B, P)`` multiplies ``h_{t-1}`` where it enters the gates.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch
from torch.autograd import forward_ad

from lstmkit.cells.lstm import LN_EPS
from lstmkit.engine import jit

# --------------------------------------------------------------------------------------------
# shared pieces


def _ln_forward(z):
    """Normalise the last axis: returns ``(xhat, rstd)``."""
    var, mean = torch.var_mean(z, dim=-1, keepdim=True, correction=0)
    rstd = torch.rsqrt(var + LN_EPS)
    return (z - mean) * rstd, rstd


def _ln_backward(d_xhat, xhat, rstd):
    """Gradient through ``xhat = (z - mean(z)) * rstd`` given the gradient wrt ``xhat``."""
    return rstd * (d_xhat - d_xhat.mean(-1, keepdim=True) - xhat * (d_xhat * xhat).mean(-1, keepdim=True))


def _flat(t):
    """``(B, T, N)`` -> ``(B*T, N)``."""
    return t.reshape(-1, t.shape[-1])


def _mask_steps(mask, T):
    return [None] * T if mask is None else list(mask.unsqueeze(-1).unbind(1))


def _keep(m, new, old):
    """The carried value after a (possibly masked) step."""
    return new if m is None else torch.where(m, new, old)


def _split(m, d):
    """Split a gradient arriving at a carried value into (to the new value, to the old one)."""
    if m is None:
        return d, None
    zero = torch.zeros((), dtype=d.dtype, device=d.device)
    return torch.where(m, d, zero), torch.where(m, zero, d)


def _add(a, b):
    return a if b is None else a + b


class _NoSecondDerivative(torch.autograd.Function):
    """A first derivative passed on unchanged, linked to what it depends on; differentiating it
    raises (the fused backward is derived by hand, for first derivatives only)."""

    @staticmethod
    def forward(ctx, grad, *depends_on):
        return grad.clone()

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            "lstmkit's fused path computes first derivatives only (its backward is derived by hand), so a "
            "second derivative (create_graph=True, then differentiating the gradient again, as a gradient "
            "penalty or MAML does) cannot go through it. Use engine='reference' for the recurrent layers involved.")


def _first_order_only(backward):
    """A fused Function's backward that, under ``create_graph=True``, returns gradients whose own
    backward raises a clear error, instead of second derivatives that silently miss the hand-derived
    part (torch's ``once_differentiable`` raises too, but only where the second backward happens to
    reach it, and says nothing of what to do)."""

    @functools.wraps(backward)
    def wrapped(ctx, *grads):
        if not torch.is_grad_enabled():
            return backward(ctx, *grads)
        with torch.no_grad():
            out = backward(ctx, *grads)
        depends_on = [t for t in (*grads, *ctx.saved_tensors) if isinstance(t, torch.Tensor) and t.requires_grad]
        return tuple(g if g is None else _NoSecondDerivative.apply(g, *depends_on) for g in out)

    return wrapped


def _keep_inputs(ctx, x, mask, rmask, *tensors):
    """Save what every backward reads; absent masks are stored as empty placeholders."""
    ctx.has_mask, ctx.has_rmask = mask is not None, rmask is not None
    empty = x.new_empty(0)
    ctx.save_for_backward(x, empty if mask is None else mask, empty if rmask is None else rmask, *tensors)


def _kept_inputs(ctx):
    """``(x, mask or None, rmask or None, [the other saved tensors])``."""
    x, mask, rmask, *rest = ctx.saved_tensors
    return x, (mask if ctx.has_mask else None), (rmask if ctx.has_rmask else None), rest


# --------------------------------------------------------------------------------------------
# LSTM family


def lstm_param_names(cell) -> list[str]:
    """The names of the cell's weights, in the order the fused kernel takes them. Each is read
    with ``getattr``: a weight that ``torch.nn.utils.prune``, ``parametrize``, ``spectral_norm``
    or ``weight_norm`` recomputes from others is an attribute or property of that name, while
    its parameters are renamed (``weight_hh_orig``, ``parametrizations.weight_hh.original``)."""
    v = cell.variant
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", *(f"weight_c{g}" for g in v.peephole_gates)]
    if v.gate_recurrence:
        names.append("weight_gr")
    if v.layer_norm:
        names += ["ln_ih_weight", "ln_hh_weight", "ln_c_weight", "ln_c_bias"]
    if cell.proj_size:
        names.append("weight_hr")
    return names


class _FusedLSTM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell_meta, x, mask, rmask, h0, c0, a0, *params):
        v, H, proj, names = cell_meta
        p = dict(zip(names, params))
        y, state, saved = _lstm_forward(v, H, proj, p, x, mask, rmask, h0, c0, a0, save=True)
        ctx.cell_meta = cell_meta
        ctx.saved = saved
        _keep_inputs(ctx, x, mask, rmask, *params)
        # The per-step lists above hold the final c (and h): returning those very tensors would
        # make each output's grad_fn point at the node that holds them, a cycle through C++ that
        # Python's collector cannot see, leaking every step's activations. Return copies.
        return (y, *(t.clone() for t in state))

    @staticmethod
    @_first_order_only
    def backward(ctx, dy, dhT, dcT, daT=None):
        v, H, proj, names = ctx.cell_meta
        x, mask, rmask, params = _kept_inputs(ctx)
        p = dict(zip(names, params))
        needs = ctx.needs_input_grad
        grads = _lstm_backward(v, H, proj, p, x, mask, rmask, ctx.saved, dy, dhT, dcT, daT, need_x=needs[1],
                               need_w={n: needs[7 + k] for k, n in enumerate(names)})
        dx, dh0, dc0, da0, dparams = grads
        return (None, dx, None, None, dh0, dc0, da0, *[dparams[n] for n in names])


def _lstm_forward(v, H, proj, p, x, mask, rmask, h, c, a, save):
    B, T, _ = x.shape
    gates = v.gates
    idx = {g: k for k, g in enumerate(gates)}
    tanh_in, tanh_out = v.input_activation == "tanh", v.output_activation == "tanh"
    w_ci, w_cf, w_co = (p.get(f"weight_c{g}") for g in "ifo")
    W_hh_t = p["weight_hh"].t()

    bias = p["bias_ih"] + p["bias_hh"]
    if use_jit(v, B, len(gates) * H, x, training=save):
        # (B*T, G*H): the input projection for every step at once, biases folded in; with layer
        # norm the products alone, which the kernel normalises step by step
        zx = _flat(x) @ p["weight_ih"].t() if v.layer_norm else torch.addmm(bias, _flat(x), p["weight_ih"].t())
        return _lstm_forward_jit(v, p, proj, zx.view(B, T, -1), bias, mask, rmask, h, c, save)
    if v.layer_norm:
        zx_xhat, zx_rstd = _ln_forward(_flat(x) @ p["weight_ih"].t())
        zx = zx_xhat * p["ln_ih_weight"] + bias
    else:
        zx = torch.addmm(bias, _flat(x), p["weight_ih"].t())
    zx = zx.view(B, T, -1).unbind(1)
    masks = _mask_steps(mask, T)

    S = {k: [] for k in ("i", "f", "g", "o", "c_prev", "c", "tc", "h_in", "hr", "a_prev",
                         "zh_xhat", "zh_rstd", "cc_xhat", "cc_rstd")} if save else None
    ys = []
    for t in range(T):
        m = masks[t]
        h_in = h if rmask is None else h * rmask
        if v.layer_norm:
            zh_xhat, zh_rstd = _ln_forward(h_in @ W_hh_t)
            z = zx[t] + zh_xhat * p["ln_hh_weight"]
        else:  # one GEMM that also adds the step's input term: (B, G*H)
            z = torch.addmm(zx[t], h_in, W_hh_t)
        z = z.chunk(len(gates), dim=1)
        z_i = z[idx["i"]] if "i" in idx else None
        z_f = z[idx["f"]] if "f" in idx else None
        z_o = z[idx["o"]] if "o" in idx else None
        if v.gate_recurrence:
            r_i, r_f, r_o = (a @ p["weight_gr"].t()).chunk(3, dim=1)
            z_i, z_f, z_o = z_i + r_i, z_f + r_f, z_o + r_o

        i = torch.sigmoid(z_i if w_ci is None else z_i + w_ci * c) if v.input_gate else None
        if v.forget_gate == "learned":
            f = torch.sigmoid(z_f if w_cf is None else z_f + w_cf * c)
        else:
            f = 1.0 - i if v.forget_gate == "coupled" else None
        g = torch.tanh(z[idx["g"]]) if tanh_in else z[idx["g"]]
        ig = g if i is None else i * g
        c_new = ig + (c if f is None else f * c)
        o = torch.sigmoid(z_o if w_co is None else z_o + w_co * c_new) if v.output_gate else None
        if v.layer_norm:
            cc_xhat, cc_rstd = _ln_forward(c_new)
            cc = cc_xhat * p["ln_c_weight"] + p["ln_c_bias"]
        else:
            cc = c_new
        tc = torch.tanh(cc) if tanh_out else cc
        hr = tc if o is None else o * tc
        h_new = hr @ p["weight_hr"].t() if proj else hr

        if save:
            for key, val in (("i", i), ("f", f), ("g", g), ("o", o), ("c_prev", c), ("c", c_new),
                             ("tc", tc), ("h_in", h_in), ("hr", hr), ("a_prev", a)):
                S[key].append(val)
            if v.layer_norm:
                S["zh_xhat"].append(zh_xhat)
                S["zh_rstd"].append(zh_rstd)
                S["cc_xhat"].append(cc_xhat)
                S["cc_rstd"].append(cc_rstd)
        ys.append(h_new if m is None else torch.where(m, h_new, torch.zeros_like(h_new)))
        h, c = _keep(m, h_new, h), _keep(m, c_new, c)
        if v.gate_recurrence:
            a = _keep(m, torch.cat([i, f, o], dim=1), a)

    y = torch.stack(ys, dim=1)
    state = (h, c, a) if v.gate_recurrence else (h, c)
    if save and v.layer_norm:
        S["zx_xhat"], S["zx_rstd"] = zx_xhat, zx_rstd
    return y, state, S


def _lstm_backward(v, H, proj, p, x, mask, rmask, S, dy, dh, dc, da, need_x=True, need_w=None):
    """The backward sweep over time, then every weight gradient as one product over B*T rows.

    ``need_x`` False (the input from data, as in a first layer) skips the input's gradient, and
    ``need_w[name]`` False a frozen weight's: each a matrix product over all B*T rows (the input's
    ~7% of a train step at (128, 50, 128, 512), ~1% at the smaller benchmark sizes;
    docs/performance.md)."""
    need_w = need_w or {}
    B, T, _ = x.shape
    sweep = _lstm_sweep_jit if S.get("jit") else _lstm_sweep_torch
    R = sweep(v, H, proj, p, mask, rmask, S, dy, dh, dc, da)
    dZ_all = R["dZ"]
    dZh_all = dZ_all if R["dZh"] is None else R["dZh"]
    grads = {}
    grads["weight_hh"] = _flat(dZh_all).t() @ _flat(R["h_in"]) if need_w.get("weight_hh", True) else None
    if v.layer_norm:
        grads["ln_hh_weight"] = R["dln"]["ln_hh_weight"]
        grads["ln_c_weight"], grads["ln_c_bias"] = R["dln"]["ln_c_weight"], R["dln"]["ln_c_bias"]
        if "dbias" in R:  # the compiled sweep went back through the input normalisation itself
            dZx, dbias = _flat(dZ_all), R["dbias"]
            grads["ln_ih_weight"] = R["dln"]["ln_ih_weight"]
        else:
            dbias = _flat(dZ_all).sum(0)
            grads["ln_ih_weight"] = (_flat(dZ_all) * S["zx_xhat"]).sum(0)
            dZx = _ln_backward(_flat(dZ_all) * p["ln_ih_weight"], S["zx_xhat"], S["zx_rstd"])
        grads["bias_ih"] = grads["bias_hh"] = dbias
    else:
        dZx = _flat(dZ_all)
        grads["bias_ih"] = grads["bias_hh"] = dZx.sum(0)
    grads["weight_ih"] = dZx.t() @ _flat(x) if need_w.get("weight_ih", True) else None
    dx = (dZx @ p["weight_ih"]).view(B, T, -1) if need_x else None
    for gate, d in R["dpeep"].items():
        grads[f"weight_c{gate}"] = d
    if v.gate_recurrence:
        dZ_ifo = torch.cat([dZ_all.chunk(4, dim=2)[k] for k in (0, 1, 3)], dim=2)
        grads["weight_gr"] = _flat(dZ_ifo).t() @ _flat(R["a_prev"])
    if proj:
        grads["weight_hr"] = _flat(R["dH_new"]).t() @ _flat(R["hr"])
    return dx, R["dh"], R["dc"], R.get("da"), grads


def _lstm_sweep_torch(v, H, proj, p, mask, rmask, S, dy, dh, dc, da):
    """The backward sweep with torch ops, one step at a time (reads the forward's lists)."""
    T = dy.shape[1]
    gates = v.gates
    tanh_in, tanh_out = v.input_activation == "tanh", v.output_activation == "tanh"
    w_ci, w_cf, w_co = (p.get(f"weight_c{g}") for g in "ifo")
    W_hh, W_hr = p["weight_hh"], p.get("weight_hr")
    masks = _mask_steps(mask, T)
    dys = dy.unbind(1)
    zero_h = torch.zeros_like(S["c"][0])
    if dh is None:
        dh = torch.zeros_like(dys[0])
    if dc is None:
        dc = zero_h
    if v.gate_recurrence and da is None:
        da = torch.zeros_like(S["a_prev"][0])

    # Gradients wrt the gate pre-activations, written in place per gate block (no per-step cat)
    B, GH = dy.shape[0], len(gates) * H
    dZ = dy.new_empty(B, T, GH)
    dZh = dy.new_empty(B, T, GH) if v.layer_norm else dZ  # ... wrt W_hh h_in (before its layer norm)
    block = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(gates)}
    dH_new = [None] * T  # wrt the projected h, for dW_hr
    dpeep = {g: zero_h.new_zeros(H) for g in v.peephole_gates}
    dln = {"ln_hh_weight": 0.0, "ln_c_weight": 0.0, "ln_c_bias": 0.0}
    for t in reversed(range(T)):
        m = masks[t]
        i, f, g, o = S["i"][t], S["f"][t], S["g"][t], S["o"][t]
        c_prev, c_new, tc = S["c_prev"][t], S["c"][t], S["tc"][t]
        dh_new, dh_pass = _split(m, dh)
        dh_new = dh_new + (dys[t] if m is None else torch.where(m, dys[t], torch.zeros_like(dys[t])))
        dc_new, dc_pass = _split(m, dc)
        if v.gate_recurrence:
            da_new, da_pass = _split(m, da)
            da_i, da_f, da_o = da_new.chunk(3, dim=1)
        dH_new[t] = dh_new
        dhr = dh_new @ W_hr if proj else dh_new
        # h = o * act(cc)
        d_o = dhr * tc if o is not None else None
        dtc = dhr if o is None else dhr * o
        dcc = dtc * (1.0 - tc * tc) if tanh_out else dtc
        if v.layer_norm:
            dln["ln_c_bias"] = dln["ln_c_bias"] + dcc.sum(0)
            dln["ln_c_weight"] = dln["ln_c_weight"] + (dcc * S["cc_xhat"][t]).sum(0)
            dcc = _ln_backward(dcc * p["ln_c_weight"], S["cc_xhat"][t], S["cc_rstd"][t])
        dc_new = dc_new + dcc
        # o = sigmoid(z_o + w_co * c)
        if o is not None:
            if v.gate_recurrence:
                d_o = d_o + da_o
            dz_o = torch.mul(d_o, o * (1.0 - o), out=dZ[:, t, block["o"]])
            if w_co is not None:
                dc_new = dc_new + dz_o * w_co
                dpeep["o"] += (dz_o * c_new).sum(0)
        # c = f * c_prev + i * g
        dg = dc_new if i is None else dc_new * i
        dz_g = dZ[:, t, block["g"]]
        if tanh_in:
            torch.mul(dg, 1.0 - g * g, out=dz_g)
        else:
            dz_g.copy_(dg)
        d_i = dc_new * g if i is not None else None
        if v.forget_gate == "learned":
            d_f = dc_new * c_prev
            if v.gate_recurrence:
                d_f = d_f + da_f
            dz_f = torch.mul(d_f, f * (1.0 - f), out=dZ[:, t, block["f"]])
        elif v.forget_gate == "coupled":
            d_i = d_i - dc_new * c_prev
        if i is not None:
            if v.gate_recurrence:
                d_i = d_i + da_i
            dz_i = torch.mul(d_i, i * (1.0 - i), out=dZ[:, t, block["i"]])
        dc_prev = dc_new if f is None else dc_new * f
        if w_ci is not None:
            dc_prev = dc_prev + dz_i * w_ci
            dpeep["i"] += (dz_i * c_prev).sum(0)
        if w_cf is not None:
            dc_prev = dc_prev + dz_f * w_cf
            dpeep["f"] += (dz_f * c_prev).sum(0)
        dz = dZ[:, t]  # (B, G*H)
        if v.layer_norm:
            dln["ln_hh_weight"] = dln["ln_hh_weight"] + (dz * S["zh_xhat"][t]).sum(0)
            dZh[:, t] = _ln_backward(dz * p["ln_hh_weight"], S["zh_xhat"][t], S["zh_rstd"][t])
        dh_in = dZh[:, t] @ W_hh
        dh = _add(dh_in if rmask is None else dh_in * rmask, dh_pass)
        dc = _add(dc_prev, dc_pass)
        if v.gate_recurrence:
            da = _add(torch.cat([dz_i, dz_f, dz_o], dim=1) @ p["weight_gr"], da_pass)

    return {
        "dZ": dZ,  # (B, T, G*H)
        "dZh": dZh if v.layer_norm else None,
        "h_in": torch.stack(S["h_in"], dim=1),
        "dH_new": torch.stack(dH_new, dim=1) if proj else None,
        "hr": torch.stack(S["hr"], dim=1) if proj else None,
        "a_prev": torch.stack(S["a_prev"], dim=1) if v.gate_recurrence else None,
        "dpeep": dpeep, "dln": dln, "dh": dh, "dc": dc, "da": da if v.gate_recurrence else None,
    }


def run_fused_lstm(cell, x, state, mask=None, recurrent_mask=None):
    """Run an :class:`~lstmkit.cells.LSTMCell` over ``x (B, T, I)``; returns ``(y, state)``."""
    names = lstm_param_names(cell)
    params = [getattr(cell, n) for n in names]
    h0, c0 = state[0], state[1]
    a0 = state[2] if cell.variant.gate_recurrence else None
    meta = (cell.variant, cell.hidden_size, cell.proj_size, names)
    if not _needs_grad(x, state, params):
        y, final, _ = _lstm_forward(cell.variant, cell.hidden_size, cell.proj_size,
                                    dict(zip(names, params)), x, mask, recurrent_mask, h0, c0, a0, save=False)
        return y, final
    out = _FusedLSTM.apply(meta, x, mask, recurrent_mask, h0, c0, a0, *params)
    return out[0], tuple(out[1:])


def _needs_grad(x, state, params):
    if not torch.is_grad_enabled():
        return False
    return any(t is not None and t.requires_grad for t in (x, *state, *params))


# --------------------------------------------------------------------------------------------
# compiled recurrences (lstmkit.engine.jit): at small sizes, where per-op dispatch dominates, and
# at every size where the batch is split over the threads (use_jit, row_chunks)

# Where the compiled loop, unsplit, beats the torch sweep (docs/performance.md, measured with 2
# threads on a quiet machine). With torch's MKL for the step's product (jit.BLAS == "torch-mkl"):
# in training up to B * (gate rows) = 65536 with gate rows <= 1024 (an LSTM up to H = 256; at
# (128, 50, 128, 512) the torch sweep's two-thread gate algebra won, 518 against 616 ms, before
# the split), in inference up to B * (gate rows) = 262144, and layer norm at every size (its
# torch sweep normalises in separate passes: 971 against 702 ms at (128, 50, 128, 512)). With
# scipy's single-threaded OpenBLAS the product lost to torch's from H = 256 on, hence the smaller
# limits there.
_MKL = jit.BLAS == "torch-mkl"
JIT_MAX_WORK = 65536 if _MKL else 16384
JIT_MAX_WORK_INFERENCE = 262144 if _MKL else 16384
JIT_MAX_GATE_ROWS = 1024 if _MKL else 512
JIT_LAYER_NORM_ANY_SIZE = _MKL
JIT_ENABLED = jit.AVAILABLE and os.environ.get("LSTMKIT_JIT", "1") != "0"


_functorch_stack = getattr(torch._C._functorch, "peek_interpreter_stack", lambda: None)


def transforms_active() -> bool:
    """Whether a ``torch.func`` transform (vmap, grad, jvp) or a forward-mode AD level is active:
    their tensors carry batch dimensions or tangents that NumPy would drop, and torch's fused
    RNN ops have no forward-mode derivative."""
    return _functorch_stack() is not None or forward_ad._current_level >= 0


def torch_ops_only() -> bool:
    """Whether a call must run torch ops only, not the NumPy and numba kernels: under
    ``torch.jit.trace`` or ``torch.compile`` (which see nothing else; a trace would keep the
    kernels' outputs as constants), under :func:`transforms_active`, or under a dispatch mode
    (``FakeTensorMode``, ``FlopCounterMode``, a user's ``TorchDispatchMode``), which must see
    every op: a fake tensor has no data for a kernel to read."""
    return (torch.jit.is_tracing() or torch.compiler.is_compiling() or transforms_active()
            or torch._C._len_torch_dispatch_stack() > 0)


def use_jit(variant, B: int, gate_rows: int, x: torch.Tensor, training: bool = True, elman: bool = False) -> bool:
    """Whether the compiled recurrence runs this problem (on the CPU, float32/64, up to a size).
    ``variant`` None: a GRU (``gate_rows`` 3H), or with ``elman`` an Elman RNN (``gate_rows`` H)."""
    if not JIT_ENABLED or x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return False
    if torch.is_autocast_enabled("cpu"):  # mixed precision: the torch sweep runs the products in bf16
        return False
    if torch_ops_only():
        return False
    if variant is not None and variant.gate_recurrence:
        return False
    if variant is not None and variant.layer_norm and JIT_LAYER_NORM_ANY_SIZE:
        return True
    # The Elman RNN's compiled sweep, unsplit, against its torch sweep (train step, 2 threads):
    # 0.06x at (1, 1000, 1, 64), 0.41x at (16, 500, 8, 64), 0.80x-0.90x up to (128, 50, 64, 256),
    # 1.02x at (128, 50, 128, 512) (docs/performance.md); split over the threads (row_chunks),
    # faster still.
    if elman:
        return _MKL or (B * gate_rows <= JIT_MAX_WORK // 3 and gate_rows <= JIT_MAX_GATE_ROWS // 3)
    # Split over the threads, the kernels' gate algebra no longer runs on one core while the other
    # waits: that was what the limits below measured. Train step against the torch sweep, split
    # in two: (128, 50, 128, 512) 0.83x-0.92x, (128, 50, 64, 256) 0.77x, (256, 50, 64, 256) 0.97x,
    # (64, 100, 64, 512) 0.67x-0.79x (docs/performance.md).
    units = gate_rows // (3 if variant is None else len(variant.gates))
    if _MKL and row_chunks(False, B, x.shape[1], units) > 1:
        return True
    if training:
        return gate_rows <= JIT_MAX_GATE_ROWS and B * gate_rows <= JIT_MAX_WORK
    return B * gate_rows <= JIT_MAX_WORK_INFERENCE and (_MKL or gate_rows <= JIT_MAX_GATE_ROWS)


# The kernels' batch split over torch's threads (jit.run_rows), where it measured faster with 2
# threads (docs/performance.md).
#
# On torch's OpenMP threads (Linux), train step against unsplit, alternated in one process: the
# LSTM and GRU 0.56x-0.84x from 8 rows a slice at every size measured from (16, 100, 16, 64) to
# (128, 50, 128, 512) (0.80x-0.91x at the largest); slices of 4 rows 0.60x-0.77x up to 128 units,
# but 1.11x at 256. The Elman RNN 0.61x-0.87x from (16, 100, 16, 64) to (128, 50, 128, 512).
SPLIT_MIN_ROWS = 8
SPLIT_MIN_ROWS_NARROW, SPLIT_NARROW_UNITS = 4, 128
# ... and only with enough work in all (B * T * units): a split call costs ~50-115 us here (the
# parallel region, each thread's call back into Python, the GIL handed over): (16, 10, 3, 16)
# took 1.46x, (32, 20, 4, 8) 0.97x, (8, 100, 16, 64) 0.74x, (64, 30, 8, 32) 0.89x.
SPLIT_MIN_WORK = 32768
# On the thread pool (other platforms, where torch's OpenMP threads spin for ~5 ms after each of
# its ops on the core the pool's thread wants): (64, 100, 64, 256) LSTM 0.70x-0.77x, GRU 0.83x;
# (128, 50, 128, 512) layer norm 0.76x; (64, 100, 32, 128) layer norm 0.73x, but the vanilla LSTM
# 1.10x and the GRU 0.98x there; slices of 8 or 16 rows 1.03x-1.21x.
POOL_SPLIT_MIN_ROWS = 32
POOL_SPLIT_MIN_UNITS = 256
POOL_SPLIT_MIN_UNITS_LAYER_NORM = 128


def row_chunks(layer_norm: bool, B: int, T: int, units: int, elman: bool = False) -> int:
    """How many slices of a batch of ``B`` sequences of ``T`` steps the compiled kernels run in
    parallel (1: no split)."""
    if B * T * units < SPLIT_MIN_WORK:
        return 1
    if jit.openmp_threads_available():
        rows = SPLIT_MIN_ROWS_NARROW if units <= SPLIT_NARROW_UNITS else SPLIT_MIN_ROWS
    elif elman or units < (POOL_SPLIT_MIN_UNITS_LAYER_NORM if layer_norm else POOL_SPLIT_MIN_UNITS):
        return 1
    else:
        rows = POOL_SPLIT_MIN_ROWS
    return max(1, min(torch.get_num_threads(), B // rows))


def _np(t):
    return t.detach().contiguous().numpy()


_DUMMIES: dict = {}


def _dummy(ndim, dtype):
    """A placeholder array of shape (1,) * ndim for an argument the kernel's flags leave unused
    (it never reads or writes it). One per (ndim, dtype), shared: allocating a dozen per call
    cost ~20-30 us of a small model's step."""
    key = (ndim, dtype)
    d = _DUMMIES.get(key)
    if d is None:
        d = _DUMMIES[key] = np.zeros((1,) * ndim, dtype=dtype)
    return d


@functools.lru_cache(maxsize=256)
def _lstm_cfg(v, proj, has_mask, has_rmask):
    """The kernels' configuration array (cached: the variant is a frozen dataclass; the array is
    only read)."""
    gates = v.gates
    pos = [gates.index(g) if g in gates else -1 for g in "ifgo"]
    forget = {"learned": 0, "none": 1, "coupled": 2}[v.forget_gate]
    peep = [int(g in v.peephole_gates) for g in "ifo"]
    return np.array([*pos, forget, int(v.input_activation == "tanh"), int(v.output_activation == "tanh"),
                     int(v.layer_norm), int(bool(proj)), int(has_mask), int(has_rmask), *peep], dtype=np.int64)


def _kernel_masks(mask, rmask, B, T, P, npdt):
    """``mask`` and ``rmask`` as the kernels read them, ``mask[b, t]`` and ``rmask[b]``: broadcast
    to (B, T) and (B, P), as the torch paths broadcast them (the kernels do not check bounds: a
    (1, T) mask read as (B, T) would read past its end), or placeholders where absent."""
    return (_np(mask.expand(B, T)) if mask is not None else _dummy(2, np.bool_),
            _np(rmask.expand(B, P)) if rmask is not None else _dummy(2, npdt))


def _saved(S, key, ndim, npdt):
    """A saved tensor's array for the kernels, or the placeholder where it was not kept."""
    t = S.get(key)
    return _dummy(ndim, npdt) if t is None else t.numpy()


def _lstm_forward_jit(v, p, proj, zx, bias, mask, rmask, h0, c0, save):
    B, T, GH = zx.shape
    H, P = c0.shape[1], h0.shape[1]
    dt = zx.dtype
    npdt = np.float32 if dt == torch.float32 else np.float64
    opt = lambda name, ndim: _np(p[name]) if name in p else _dummy(ndim, npdt)  # noqa: E731
    h, c = h0.detach().clone().contiguous(), c0.detach().clone().contiguous()
    y = torch.empty(B, T, P, dtype=dt)
    S = {"jit": True, "cfg": _lstm_cfg(v, proj, mask is not None, rmask is not None)}
    S["mask"], S["rmask"] = _kernel_masks(mask, rmask, B, T, P, npdt)
    zx = zx.contiguous()
    if save:
        S["gates"], S["tc"] = torch.empty(B, T, 4, H, dtype=dt), torch.empty(B, T, H, dtype=dt)
        S["c_all"] = torch.empty(B, T + 1, H, dtype=dt)
        S["c_all"][:, 0] = c0.detach()
        # h_in and hr feed the weight-gradient products after the loop at every step, masked
        # ones included (with zero gradient): they must hold numbers there, not uninitialised memory.
        S["h_in"] = torch.zeros(B, T, P, dtype=dt)
        if proj:
            S["hr"] = torch.zeros(B, T, H, dtype=dt)
        if v.layer_norm:
            S["zh_xhat"], S["zh_rstd"] = torch.empty(B, T, GH, dtype=dt), torch.empty(B, T, dtype=dt)
            S["cc_xhat"], S["cc_rstd"] = torch.empty(B, T, H, dtype=dt), torch.empty(B, T, dtype=dt)
            S["zx_stats"] = torch.empty(B, T, 2, dtype=dt)
            S["zx"] = zx  # the raw input products: the backward normalises them again
    W_hr = _np(p["weight_hr"]) if proj else _dummy(2, npdt)
    args = (S["cfg"], _np(zx), _np(p["weight_hh"]), W_hr, opt("weight_ci", 1),
            opt("weight_cf", 1), opt("weight_co", 1), opt("ln_hh_weight", 1), opt("ln_c_weight", 1),
            opt("ln_c_bias", 1), opt("ln_ih_weight", 1), _np(bias) if v.layer_norm else _dummy(1, npdt),
            S["mask"], S["rmask"], h.numpy(), c.numpy(), y.numpy(),
            _saved(S, "gates", 4, npdt), _saved(S, "c_all", 3, npdt), _saved(S, "tc", 3, npdt),
            _saved(S, "h_in", 3, npdt), _saved(S, "hr", 3, npdt), _saved(S, "zh_xhat", 3, npdt),
            _saved(S, "zh_rstd", 2, npdt), _saved(S, "cc_xhat", 3, npdt), _saved(S, "cc_rstd", 2, npdt),
            _saved(S, "zx_stats", 3, npdt), save)
    # zx, mask, rmask, h, c, y and every saved array have the batch first
    jit.run_rows(jit.lstm_forward, args, B, (1, *range(12, 27)), chunks=row_chunks(v.layer_norm, B, T, H))
    return y, (h, c), S


def _lstm_sweep_jit(v, H, proj, p, mask, rmask, S, dy, dh, dc, da):
    B, T, P = dy.shape
    dt = dy.dtype
    npdt = np.float32 if dt == torch.float32 else np.float64
    GH = p["weight_hh"].shape[0]
    opt = lambda name, ndim: _np(p[name]) if name in p else _dummy(ndim, npdt)  # noqa: E731
    dh = torch.zeros(B, P, dtype=dt) if dh is None else dh.detach().clone().contiguous()
    dc = torch.zeros(B, H, dtype=dt) if dc is None else dc.detach().clone().contiguous()
    dZ = torch.empty(B, T, GH, dtype=dt)
    dZh = torch.empty(B, T, GH, dtype=dt) if v.layer_norm else None
    dH_new = torch.empty(B, T, P, dtype=dt) if proj else None
    dpeep = torch.zeros(3, H, dtype=dt)
    if v.layer_norm:
        dln = {"ln_hh_weight": torch.zeros(GH, dtype=dt), "ln_c_weight": torch.zeros(H, dtype=dt),
               "ln_c_bias": torch.zeros(H, dtype=dt), "ln_ih_weight": torch.zeros(GH, dtype=dt)}
        dbias = torch.zeros(GH, dtype=dt)
        ln_out = [t.numpy() for t in (*dln.values(), dbias)]
    else:
        dln, dbias = None, None
        ln_out = [_dummy(1, npdt)] * 5
    dln_hh, dln_c_w, dln_c_b, dln_ih, dbias_np = ln_out
    args = (S["cfg"], _np(dy), dh.numpy(), dc.numpy(), _np(p["weight_hh"]), opt("weight_hr", 2),
            opt("weight_ci", 1), opt("weight_cf", 1), opt("weight_co", 1), opt("ln_hh_weight", 1),
            opt("ln_c_weight", 1), opt("ln_ih_weight", 1), S["mask"], S["rmask"], S["gates"].numpy(),
            S["c_all"].numpy(), S["tc"].numpy(), _saved(S, "zh_xhat", 3, npdt),
            _saved(S, "zh_rstd", 2, npdt), _saved(S, "cc_xhat", 3, npdt), _saved(S, "cc_rstd", 2, npdt),
            _saved(S, "zx", 3, npdt), _saved(S, "zx_stats", 3, npdt),
            dZ.numpy(), _dummy(3, npdt) if dZh is None else dZh.numpy(),
            _dummy(3, npdt) if dH_new is None else dH_new.numpy(), dpeep.numpy(),
            dln_hh, dln_c_w, dln_c_b, dln_ih, dbias_np)
    # dy, dh, dc, the masks, the saved arrays and dZ, dZh, dH_new have the batch first; the
    # peephole, layer-norm and bias gradients are sums over it
    jit.run_rows(jit.lstm_backward, args, B, (1, 2, 3, *range(12, 26)), accumulated=range(26, 32),
                 chunks=row_chunks(v.layer_norm, B, T, H))
    R = {
        "dZ": dZ, "dZh": dZh, "h_in": S["h_in"], "dH_new": dH_new, "hr": S.get("hr"), "a_prev": None,
        "dpeep": {g: dpeep[k] for k, g in enumerate("ifo") if g in v.peephole_gates},
        "dln": dln, "dh": dh, "dc": dc,
    }
    if v.layer_norm:  # dZ then holds the gradient wrt the raw input products
        R["dbias"] = dbias
    return R


def _gru_forward_jit(reset_after, zx, mask, rmask, h0, W_hh, b_hh, save):
    B, T, H3 = zx.shape
    H = H3 // 3
    dt = zx.dtype
    npdt = np.float32 if dt == torch.float32 else np.float64
    full = lambda: torch.empty(B, T, H, dtype=dt) if save else None  # noqa: E731
    h = h0.detach().clone().contiguous()
    y = torch.empty(B, T, H, dtype=dt)
    zeros = lambda: torch.zeros(B, T, H, dtype=dt) if save else None  # noqa: E731
    # h_in and hn feed the weight-gradient products at masked steps too: numbers, not garbage
    S = {"jit": True, "r": torch.empty(B, T, H, dtype=dt), "z": torch.empty(B, T, H, dtype=dt),
         "n": full(), "h_prev": full(), "h_in": zeros(), "hn": zeros()}
    S["mask"], S["rmask"] = _kernel_masks(mask, rmask, B, T, H, npdt)
    H2 = 2 * h0.shape[1]
    args = (reset_after, mask is not None, rmask is not None, _np(zx), _np(W_hh[:H2].t()),
            _np(W_hh[H2:].t()), _np(b_hh),
            S["mask"], S["rmask"], h.numpy(), y.numpy(), S["r"].numpy(), S["z"].numpy(),
            *(_saved(S, key, 3, npdt) for key in ("n", "h_prev", "h_in", "hn")), save)
    # zx, the masks, h, y and the saved arrays have the batch first
    jit.run_rows(jit.gru_forward, args, B, (3, *range(7, 17)), chunks=row_chunks(False, B, T, H))
    return y, h, S


def _gru_sweep_jit(reset_after, mask, rmask, W_hh, S, dy, dh):
    B, T, H = dy.shape
    dt = dy.dtype
    dh = torch.zeros(B, H, dtype=dt) if dh is None else dh.detach().clone().contiguous()
    dZx = torch.empty(B, T, 3 * H, dtype=dt)
    dZh_rz = torch.empty(B, T, 2 * H, dtype=dt)
    dZh_n = torch.empty(B, T, H, dtype=dt)
    args = (reset_after, mask is not None, rmask is not None, _np(dy), dh.numpy(), _np(W_hh[:2 * H]),
            _np(W_hh[2 * H:]),
            S["mask"], S["rmask"], S["r"].numpy(), S["z"].numpy(), S["n"].numpy(), S["h_prev"].numpy(),
            S["h_in"].numpy(), S["hn"].numpy(), dZx.numpy(), dZh_rz.numpy(), dZh_n.numpy())
    # dy, dh, the masks, the saved arrays and the three gradients have the batch first
    jit.run_rows(jit.gru_backward, args, B, (3, 4, *range(7, 18)), chunks=row_chunks(False, B, T, H))
    # for reset_after=False the kernel saved r * h_in in "hn": the input of the n block's product
    return {"dZx": dZx, "dZh_rz": dZh_rz, "dZh_n": dZh_n, "h_in": S["h_in"],
            "n_src": S["h_in"] if reset_after else S["hn"], "dh": dh}


# --------------------------------------------------------------------------------------------
# GRU


class _FusedGRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, reset_after, x, mask, rmask, h0, W_ih, W_hh, b_ih, b_hh):
        y, hT, saved = _gru_forward(reset_after, x, mask, rmask, h0, W_ih, W_hh, b_ih, b_hh, save=True)
        ctx.reset_after, ctx.saved = reset_after, saved
        _keep_inputs(ctx, x, mask, rmask, W_ih, W_hh)
        return y, hT.clone()  # see _FusedLSTM.forward: outputs never alias saved tensors

    @staticmethod
    @_first_order_only
    def backward(ctx, dy, dhT):
        x, mask, rmask, (W_ih, W_hh) = _kept_inputs(ctx)
        needs = ctx.needs_input_grad  # (reset_after, x, mask, rmask, h0, W_ih, W_hh, b_ih, b_hh)
        out = _gru_backward(ctx.reset_after, x, mask, rmask, W_ih, W_hh, ctx.saved, dy, dhT,
                            needs[1], needs[5], needs[6])
        return (None, *out[:1], None, None, *out[1:])


def _gru_forward(reset_after, x, mask, rmask, h, W_ih, W_hh, b_ih, b_hh, save):
    B, T, _ = x.shape
    zx = torch.addmm(b_ih, _flat(x), W_ih.t()).view(B, T, -1)  # (B, T, 3H): every step's input term
    if use_jit(None, B, W_hh.shape[0], x, training=save):
        return _gru_forward_jit(reset_after, zx, mask, rmask, h, W_hh, b_hh, save)
    zx = zx.unbind(1)
    W_rz, W_n = W_hh[: 2 * W_hh.shape[1]], W_hh[2 * W_hh.shape[1]:]
    b_rz, b_n = b_hh[: 2 * W_hh.shape[1]], b_hh[2 * W_hh.shape[1]:]
    masks = _mask_steps(mask, T)
    S = {k: [] for k in ("r", "z", "n", "h_prev", "h_in", "hn", "rh")} if save else None
    ys = []
    for t in range(T):
        m = masks[t]
        h_in = h if rmask is None else h * rmask
        x_r, x_z, x_n = zx[t].chunk(3, dim=1)
        h_r, h_z = torch.addmm(b_rz, h_in, W_rz.t()).chunk(2, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        if reset_after:
            hn = torch.addmm(b_n, h_in, W_n.t())
            n = torch.tanh(x_n + r * hn)
            rh = None
        else:
            rh = r * h_in
            hn = None
            n = torch.tanh(x_n + torch.addmm(b_n, rh, W_n.t()))
        h_new = n + z * (h - n)
        if save:
            for key, val in (("r", r), ("z", z), ("n", n), ("h_prev", h), ("h_in", h_in), ("hn", hn), ("rh", rh)):
                S[key].append(val)
        ys.append(h_new if m is None else torch.where(m, h_new, torch.zeros_like(h_new)))
        h = _keep(m, h_new, h)
    return torch.stack(ys, dim=1), h, S


def _gru_backward(reset_after, x, mask, rmask, W_ih, W_hh, S, dy, dh, need_x=True, need_ih=True, need_hh=True):
    """The backward sweep over time, then the weight gradients as products over B*T rows; the
    input's and the two weights' only where needed (as :func:`_lstm_backward`)."""
    B, T, _ = x.shape
    if S.get("jit"):
        R = _gru_sweep_jit(reset_after, mask, rmask, W_hh, S, dy, dh)
    else:
        R = _gru_sweep_torch(reset_after, mask, rmask, W_hh, S, dy, dh)
    dZx_all, dZh_rz_all, dZh_n_all = _flat(R["dZx"]), _flat(R["dZh_rz"]), _flat(R["dZh_n"])
    h_in_all, n_src = _flat(R["h_in"]), _flat(R["n_src"])
    dW_hh = torch.cat([dZh_rz_all.t() @ h_in_all, dZh_n_all.t() @ n_src], dim=0) if need_hh else None
    db_hh = torch.cat([dZh_rz_all.sum(0), dZh_n_all.sum(0)])
    dW_ih = dZx_all.t() @ _flat(x) if need_ih else None
    dx = (dZx_all @ W_ih).view(B, T, -1) if need_x else None
    return dx, R["dh"], dW_ih, dW_hh, dZx_all.sum(0), db_hh


def _gru_sweep_torch(reset_after, mask, rmask, W_hh, S, dy, dh):
    T = dy.shape[1]
    Hd = W_hh.shape[1]
    W_rz, W_n = W_hh[: 2 * Hd], W_hh[2 * Hd:]
    masks = _mask_steps(mask, T)
    dys = dy.unbind(1)
    if dh is None:
        dh = torch.zeros_like(dys[0])
    dZx, dZh_rz, dZh_n = [None] * T, [None] * T, [None] * T
    for t in reversed(range(T)):
        m = masks[t]
        r, z, n, h_prev = S["r"][t], S["z"][t], S["n"][t], S["h_prev"][t]
        dh_new, dh_pass = _split(m, dh)
        dh_new = dh_new + (dys[t] if m is None else torch.where(m, dys[t], torch.zeros_like(dys[t])))
        # h = (1 - z) * n + z * h_prev
        dn = dh_new * (1.0 - z)
        dz_z = dh_new * (h_prev - n) * z * (1.0 - z)
        dz_n = dn * (1.0 - n * n)
        if reset_after:
            dz_r = dz_n * S["hn"][t] * r * (1.0 - r)
            dhn = dz_n * r  # gradient wrt W_hn h_in + b_hn
            dh_in = dhn @ W_n
        else:
            drh = dz_n @ W_n
            dz_r = drh * S["h_in"][t] * r * (1.0 - r)
            dhn = dz_n  # gradient wrt W_hn (r * h_in) + b_hn
            dh_in = drh * r
        drz = torch.cat([dz_r, dz_z], dim=1)
        dh_in = dh_in + drz @ W_rz
        dZx[t] = torch.cat([dz_r, dz_z, dz_n], dim=1)
        dZh_rz[t], dZh_n[t] = drz, dhn
        dh_prev = dh_new * z + (dh_in if rmask is None else dh_in * rmask)
        dh = _add(dh_prev, dh_pass)

    return {"dZx": torch.stack(dZx, dim=1), "dZh_rz": torch.stack(dZh_rz, dim=1), "dZh_n": torch.stack(dZh_n, dim=1),
            "h_in": torch.stack(S["h_in"], dim=1),
            "n_src": torch.stack(S["h_in"] if reset_after else S["rh"], dim=1), "dh": dh}


def run_fused_gru(cell, x, state, mask=None, recurrent_mask=None):
    """Run a :class:`~lstmkit.cells.GRUCell` over ``x (B, T, I)``; returns ``(y, (h,))``."""
    params = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    if not _needs_grad(x, state, params):
        y, h, _ = _gru_forward(cell.reset_after, x, mask, recurrent_mask, state[0], *params, save=False)
        return y, (h,)
    y, h = _FusedGRU.apply(cell.reset_after, x, mask, recurrent_mask, state[0], *params)
    return y, (h,)


# --------------------------------------------------------------------------------------------
# Elman RNN


class _FusedRNN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, relu, x, mask, rmask, h0, W_ih, W_hh, b_ih, b_hh):
        y, hT, saved = _rnn_forward(relu, x, mask, rmask, h0, W_ih, W_hh, b_ih, b_hh, save=True)
        ctx.relu, ctx.saved = relu, saved
        _keep_inputs(ctx, x, mask, rmask, W_ih, W_hh)
        return y, hT.clone()  # see _FusedLSTM.forward: outputs never alias saved tensors

    @staticmethod
    @_first_order_only
    def backward(ctx, dy, dhT):
        x, mask, rmask, (W_ih, W_hh) = _kept_inputs(ctx)
        B, T, _ = x.shape
        S = ctx.saved
        sweep = _rnn_sweep_jit if S.get("jit") else _rnn_sweep_torch
        dZ_all, h_in_all, dh = sweep(ctx.relu, mask, rmask, W_hh, S, dy, dhT)
        dZ_all = _flat(dZ_all)
        needs = ctx.needs_input_grad  # (relu, x, mask, rmask, h0, W_ih, W_hh, b_ih, b_hh): as _lstm_backward
        dW_hh = dZ_all.t() @ _flat(h_in_all) if needs[6] else None
        dW_ih = dZ_all.t() @ _flat(x) if needs[5] else None
        dx = (dZ_all @ W_ih).view(B, T, -1) if needs[1] else None
        db = dZ_all.sum(0)
        return None, dx, None, None, dh, dW_ih, dW_hh, db, db


def _rnn_sweep_torch(relu, mask, rmask, W_hh, S, dy, dh):
    """The backward sweep with torch ops: ``(dZ (B, T, H), h_in (B, T, H), dh0)``."""
    T = dy.shape[1]
    masks = _mask_steps(mask, T)
    dys = dy.unbind(1)
    dh = torch.zeros_like(dys[0]) if dh is None else dh
    hs = S["h"]
    dZ = [None] * T
    for t in reversed(range(T)):
        m = masks[t]
        dh_new, dh_pass = _split(m, dh)
        dh_new = dh_new + (dys[t] if m is None else torch.where(m, dys[t], torch.zeros_like(dys[t])))
        h = hs[t]
        dz = dh_new * (h > 0).to(h.dtype) if relu else dh_new * (1.0 - h * h)
        dZ[t] = dz
        dh_in = dz @ W_hh
        dh = _add(dh_in if rmask is None else dh_in * rmask, dh_pass)
    return torch.stack(dZ, dim=1), torch.stack(S["h_in"], dim=1), dh


def _rnn_forward_jit(relu, zx, mask, rmask, h0, W_hh, save):
    B, T, H = zx.shape
    dt = zx.dtype
    npdt = np.float32 if dt == torch.float32 else np.float64
    h = h0.detach().clone().contiguous()
    y = torch.empty(B, T, H, dtype=dt)
    S = {"jit": True}
    S["mask"], S["rmask"] = _kernel_masks(mask, rmask, B, T, H, npdt)
    if save:
        # h_in feeds the weight-gradient product at masked steps too: numbers, not garbage
        S["h"], S["h_in"] = torch.empty(B, T, H, dtype=dt), torch.zeros(B, T, H, dtype=dt)
    args = (relu, mask is not None, rmask is not None, _np(zx), _np(W_hh), S["mask"], S["rmask"],
            h.numpy(), y.numpy(), _saved(S, "h", 3, npdt), _saved(S, "h_in", 3, npdt), save)
    jit.run_rows(jit.rnn_forward, args, B, (3, *range(5, 11)), chunks=row_chunks(False, B, T, H, elman=True))
    return y, h, S


def _rnn_sweep_jit(relu, mask, rmask, W_hh, S, dy, dh):
    B, T, H = dy.shape
    dt = dy.dtype
    dh = torch.zeros(B, H, dtype=dt) if dh is None else dh.detach().clone().contiguous()
    dZ = torch.empty(B, T, H, dtype=dt)
    args = (relu, mask is not None, rmask is not None, _np(dy), dh.numpy(), _np(W_hh), S["mask"],
            S["rmask"], S["h"].numpy(), dZ.numpy())
    jit.run_rows(jit.rnn_backward, args, B, (3, 4, 6, 7, 8, 9), chunks=row_chunks(False, B, T, H, elman=True))
    return dZ, S["h_in"], dh


def _rnn_forward(relu, x, mask, rmask, h, W_ih, W_hh, b_ih, b_hh, save):
    B, T, _ = x.shape
    zx = torch.addmm(b_ih + b_hh, _flat(x), W_ih.t()).view(B, T, -1)
    if use_jit(None, B, W_hh.shape[0], x, training=save, elman=True):
        return _rnn_forward_jit(relu, zx, mask, rmask, h, W_hh, save)
    zx = zx.unbind(1)
    act = torch.relu if relu else torch.tanh
    masks = _mask_steps(mask, T)
    S = {"h": [], "h_in": []} if save else None
    ys = []
    for t in range(T):
        m = masks[t]
        h_in = h if rmask is None else h * rmask
        h_new = act(torch.addmm(zx[t], h_in, W_hh.t()))
        if save:
            S["h"].append(h_new)
            S["h_in"].append(h_in)
        ys.append(h_new if m is None else torch.where(m, h_new, torch.zeros_like(h_new)))
        h = _keep(m, h_new, h)
    return torch.stack(ys, dim=1), h, S


def run_fused_rnn(cell, x, state, mask=None, recurrent_mask=None):
    """Run an :class:`~lstmkit.cells.RNNCell` over ``x (B, T, I)``; returns ``(y, (h,))``."""
    params = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    relu = cell.nonlinearity == "relu"
    if not _needs_grad(x, state, params):
        y, h, _ = _rnn_forward(relu, x, mask, recurrent_mask, state[0], *params, save=False)
        return y, (h,)
    y, h = _FusedRNN.apply(relu, x, mask, recurrent_mask, state[0], *params)
    return y, (h,)
