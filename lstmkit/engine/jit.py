"""Compiled recurrences (numba) for the fused path at small sizes.

At small batch and hidden sizes a recurrent step is a few microseconds of arithmetic but ~20-40
torch calls, each costing microseconds of dispatch; the loop, not the math, is the bottleneck
(docs/performance.md). These kernels run the *sequential* part of the fused path, the forward
recurrence and the backward sweep over time, as compiled loops with no per-step dispatch. What
is not sequential stays in torch: the input projection for all steps before the loop and the
weight gradients as single matrix products after it (lstmkit.engine.fused).

The kernels implement exactly the equations of docs/bptt.md; tests/engine compares them with the
torch recurrence and the reference loop in float64. Gate activations are saved in a fixed
``(B, T, 4, H)`` layout (i, f, g, o), with 1 for an absent gate and ``1 - i`` for a coupled one.

numba is optional: without it (or for configurations the kernels do not cover: FGR) the fused
path runs its torch recurrence.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

log = logging.getLogger(__name__)

# The per-step products are small; BLAS threads only add synchronisation to each of them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:  # pragma: no cover - exercised through AVAILABLE
    import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot calls this BLAS)
    from numba import njit

    AVAILABLE = True
except Exception:  # numba or scipy missing or broken on this platform
    AVAILABLE = False

    def njit(*args, **kwargs):
        def wrap(fn):
            return fn

        return wrap(args[0]) if args and callable(args[0]) else wrap


# cfg indices for the LSTM kernels
GI, GF, GG, GO, FORGET, TANH_IN, TANH_OUT, LN, PROJ, MASK, RMASK, PEEP_I, PEEP_F, PEEP_O = range(14)


@njit(cache=True, fastmath=True, nogil=True)
def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


@njit(cache=True, fastmath=True, nogil=True)
def _tanh(z):
    """tanh through one exp: 1 - 2 / (e^2z + 1). libm's tanh costs ~14 ns here, exp ~4 ns
    (docs/performance.md); the argument is clipped where tanh is 1 to the last bit in float64."""
    e = math.exp(2.0 * min(max(z, -20.0), 20.0))
    return 1.0 - 2.0 / (e + 1.0)


@njit(cache=True, fastmath=True, nogil=True)
def _ln_rows(v, n):
    """In place: normalise v[:n]; returns rstd."""
    mean = 0.0
    for j in range(n):
        mean += v[j]
    mean /= n
    var = 0.0
    for j in range(n):
        d = v[j] - mean
        var += d * d
    var /= n
    rstd = 1.0 / math.sqrt(var + 1e-5)
    for j in range(n):
        v[j] = (v[j] - mean) * rstd
    return rstd


@njit(cache=True, fastmath=True, nogil=True)
def _ln_back(d, xhat, rstd, out, n):
    """out = gradient through the normalisation, given d = dL/dxhat."""
    m1 = 0.0
    m2 = 0.0
    for j in range(n):
        m1 += d[j]
        m2 += d[j] * xhat[j]
    m1 /= n
    m2 /= n
    for j in range(n):
        out[j] = rstd * (d[j] - m1 - xhat[j] * m2)



@njit(cache=True, fastmath=True, nogil=True)
def lstm_forward(cfg, zx, W_hhT, W_hrT, w_ci, w_cf, w_co, ln_hh_w, ln_c_w, ln_c_b, mask, rmask, h, c,
                 y, gates, c_all, tc_all, h_in_all, hr_all, zh_xhat, zh_rstd, cc_xhat, cc_rstd, save):
    """Forward recurrence. ``zx (B, T, GH)`` holds each step's input term and the biases;
    ``W_hhT (P, GH)`` and ``W_hrT (H, P)`` are the transposed recurrent and projection weights;
    ``h (B, P)`` and ``c (B, H)`` are updated in place to the final state; ``y (B, T, P)``
    receives the outputs."""
    B, T, GH = zx.shape
    P = W_hhT.shape[0]
    H = c.shape[1]
    gi, gf, gg, go = cfg[GI], cfg[GF], cfg[GG], cfg[GO]
    # the configuration as locals: read once, so the compiler can hoist the branches
    k_forget = cfg[FORGET]
    k_tanh_in = cfg[TANH_IN]
    k_tanh_out = cfg[TANH_OUT]
    k_ln = cfg[LN]
    k_proj = cfg[PROJ]
    k_mask = cfg[MASK]
    k_rmask = cfg[RMASK]
    k_peep_i = cfg[PEEP_I]
    k_peep_f = cfg[PEEP_F]
    k_peep_o = cfg[PEEP_O]
    dt = zx.dtype
    h_in = np.empty((B, P), dt)
    cn = np.empty((B, H), dt)
    cc = np.empty(H, dt)
    hr = np.zeros((B, H), dt)
    ov = np.empty(H, dt)
    zh = np.empty((B, GH), dt)
    for t in range(T):
        for b in range(B):
            for k in range(P):
                h_in[b, k] = h[b, k] * rmask[b, k] if k_rmask else h[b, k]
        np.dot(h_in, W_hhT, zh)  # (B, GH): the whole batch's recurrent product, one BLAS call
        for b in range(B):
            if k_mask and not mask[b, t]:
                continue
            z = zh[b]
            if k_ln:
                r = _ln_rows(z, GH)
                if save:
                    zh_rstd[b, t] = r
                    for j in range(GH):
                        zh_xhat[b, t, j] = z[j]
                for j in range(GH):
                    z[j] = zx[b, t, j] + z[j] * ln_hh_w[j]
            else:
                for j in range(GH):
                    z[j] += zx[b, t, j]
            for j in range(H):
                cp = c[b, j]
                if gi >= 0:
                    zi = z[gi * H + j]
                    if k_peep_i:
                        zi += w_ci[j] * cp
                    i = _sigmoid(zi)
                else:
                    i = 1.0
                if k_forget == 0:
                    zf = z[gf * H + j]
                    if k_peep_f:
                        zf += w_cf[j] * cp
                    f = _sigmoid(zf)
                elif k_forget == 2:
                    f = 1.0 - i
                else:
                    f = 1.0
                zg = z[gg * H + j]
                g = _tanh(zg) if k_tanh_in else zg
                cj = f * cp + i * g
                if go >= 0:
                    zo = z[go * H + j]
                    if k_peep_o:
                        zo += w_co[j] * cj
                    o = _sigmoid(zo)
                else:
                    o = 1.0
                cn[b, j] = cj
                cc[j] = cj
                ov[j] = o
                if save:
                    gates[b, t, 0, j] = i
                    gates[b, t, 1, j] = f
                    gates[b, t, 2, j] = g
                    gates[b, t, 3, j] = o
            if k_ln:
                r = _ln_rows(cc, H)
                if save:
                    cc_rstd[b, t] = r
                    for j in range(H):
                        cc_xhat[b, t, j] = cc[j]
                for j in range(H):
                    cc[j] = cc[j] * ln_c_w[j] + ln_c_b[j]
            for j in range(H):
                tc = _tanh(cc[j]) if k_tanh_out else cc[j]
                hr[b, j] = ov[j] * tc
                if save:
                    tc_all[b, t, j] = tc
        if k_proj:
            h_new = np.dot(hr, W_hrT)  # (B, P)
        else:
            h_new = hr
        for b in range(B):
            if k_mask and not mask[b, t]:
                for k in range(P):
                    y[b, t, k] = 0.0
                if save:
                    for j in range(H):
                        c_all[b, t + 1, j] = c[b, j]
                continue
            for k in range(P):
                h[b, k] = h_new[b, k]
                y[b, t, k] = h_new[b, k]
            for j in range(H):
                c[b, j] = cn[b, j]
            if save:
                for k in range(P):
                    h_in_all[b, t, k] = h_in[b, k]
                for j in range(H):
                    c_all[b, t + 1, j] = cn[b, j]
                    if k_proj:
                        hr_all[b, t, j] = hr[b, j]


@njit(cache=True, fastmath=True, nogil=True)
def lstm_backward(cfg, dy, dh, dc, W_hh, W_hr, w_ci, w_cf, w_co, ln_hh_w, ln_c_w, mask, rmask,
                  gates, c_all, tc_all, zh_xhat, zh_rstd, cc_xhat, cc_rstd,
                  dZ, dZh, dH_new, dpeep, dln_hh, dln_c_w, dln_c_b):
    """Backward sweep: fills ``dZ (B, T, GH)`` (and ``dZh`` with layer norm, ``dH_new`` with a
    projection), accumulates peephole and layer-norm gradients, and leaves the gradients wrt the
    initial state in ``dh``, ``dc``."""
    B, T, P = dy.shape
    GH = W_hh.shape[0]
    H = dc.shape[1]
    gi, gf, gg, go = cfg[GI], cfg[GF], cfg[GG], cfg[GO]
    # the configuration as locals: read once, so the compiler can hoist the branches
    k_forget = cfg[FORGET]
    k_tanh_in = cfg[TANH_IN]
    k_tanh_out = cfg[TANH_OUT]
    k_ln = cfg[LN]
    k_proj = cfg[PROJ]
    k_mask = cfg[MASK]
    k_rmask = cfg[RMASK]
    k_peep_i = cfg[PEEP_I]
    k_peep_f = cfg[PEEP_F]
    k_peep_o = cfg[PEEP_O]
    dt = dy.dtype
    dhn = np.empty((B, P), dt)
    src = np.empty((B, GH), dt)
    dcc = np.empty(H, dt)
    tmp = np.empty(max(H, GH), dt)
    dzo = np.empty(H, dt)
    dh_in = np.empty((B, P), dt)
    for t in range(T - 1, -1, -1):
        for b in range(B):
            live = not k_mask or mask[b, t]
            for k in range(P):
                dhn[b, k] = dh[b, k] + dy[b, t, k] if live else 0.0
                if k_proj:
                    dH_new[b, t, k] = dhn[b, k]
        dhr = np.dot(dhn, W_hr) if k_proj else dhn  # (B, H)
        for b in range(B):
            if k_mask and not mask[b, t]:
                for j in range(GH):
                    dZ[b, t, j] = 0.0
                    src[b, j] = 0.0
                    if k_ln:
                        dZh[b, t, j] = 0.0
                continue
            for j in range(H):
                o = gates[b, t, 3, j]
                tc = tc_all[b, t, j]
                dtc = dhr[b, j] * o
                dcc[j] = dtc * (1.0 - tc * tc) if k_tanh_out else dtc
                dzo[j] = dhr[b, j] * tc * o * (1.0 - o)
            if k_ln:
                for j in range(H):
                    dln_c_b[j] += dcc[j]
                    dln_c_w[j] += dcc[j] * cc_xhat[b, t, j]
                    tmp[j] = dcc[j] * ln_c_w[j]
                _ln_back(tmp, cc_xhat[b, t], cc_rstd[b, t], dcc, H)
            for j in range(H):
                i = gates[b, t, 0, j]
                f = gates[b, t, 1, j]
                g = gates[b, t, 2, j]
                cp = c_all[b, t, j]
                dcn = dc[b, j] + dcc[j]
                if go >= 0:
                    if k_peep_o:
                        dcn += dzo[j] * w_co[j]
                        dpeep[2, j] += dzo[j] * c_all[b, t + 1, j]
                    dZ[b, t, go * H + j] = dzo[j]
                dg = dcn * i
                dZ[b, t, gg * H + j] = dg * (1.0 - g * g) if k_tanh_in else dg
                dcp = dcn * f
                if gi >= 0:
                    di = dcn * g
                    if k_forget == 2:
                        di -= dcn * cp
                    dzi = di * i * (1.0 - i)
                    dZ[b, t, gi * H + j] = dzi
                    if k_peep_i:
                        dcp += dzi * w_ci[j]
                        dpeep[0, j] += dzi * cp
                if k_forget == 0:
                    dzf = dcn * cp * f * (1.0 - f)
                    dZ[b, t, gf * H + j] = dzf
                    if k_peep_f:
                        dcp += dzf * w_cf[j]
                        dpeep[1, j] += dzf * cp
                dc[b, j] = dcp
            if k_ln:
                for j in range(GH):
                    dln_hh[j] += dZ[b, t, j] * zh_xhat[b, t, j]
                    tmp[j] = dZ[b, t, j] * ln_hh_w[j]
                _ln_back(tmp, zh_xhat[b, t], zh_rstd[b, t], dZh[b, t], GH)
                for j in range(GH):
                    src[b, j] = dZh[b, t, j]
            else:
                for j in range(GH):
                    src[b, j] = dZ[b, t, j]
        np.dot(src, W_hh, dh_in)  # (B, P): the whole batch's recurrent gradient, one BLAS call
        for b in range(B):
            if k_mask and not mask[b, t]:
                continue  # a skipped step passes dh and dc through unchanged
            for k in range(P):
                dh[b, k] = dh_in[b, k] * rmask[b, k] if k_rmask else dh_in[b, k]


@njit(cache=True, fastmath=True, nogil=True)
def gru_forward(reset_after, has_mask, has_rmask, zx, W_rzT, W_nT, b_hh, mask, rmask, h,
                y, r_all, z_all, n_all, hp_all, h_in_all, hn_all, save):
    """GRU forward recurrence; ``zx (B, T, 3H)`` includes ``bias_ih``; ``W_rzT (H, 2H)`` and
    ``W_nT (H, H)`` are the transposed recurrent weights; ``h`` is updated in place.
    ``hn_all`` saves ``W_hn h_in + b_hn`` (reset_after) or ``r * h_in`` (otherwise)."""
    B, T, H3 = zx.shape
    H = H3 // 3
    dt = zx.dtype
    h_in = np.empty((B, H), dt)
    rh = np.empty((B, H), dt)
    for t in range(T):
        for b in range(B):
            for k in range(H):
                h_in[b, k] = h[b, k] * rmask[b, k] if has_rmask else h[b, k]
        hrz = np.dot(h_in, W_rzT)  # (B, 2H)
        for b in range(B):
            for j in range(H):
                r = _sigmoid(zx[b, t, j] + hrz[b, j] + b_hh[j])
                z = _sigmoid(zx[b, t, H + j] + hrz[b, H + j] + b_hh[H + j])
                r_all[b, t, j] = r
                z_all[b, t, j] = z
                rh[b, j] = r * h_in[b, j]
        hn = np.dot(h_in if reset_after else rh, W_nT)  # (B, H)
        for b in range(B):
            if has_mask and not mask[b, t]:
                for k in range(H):
                    y[b, t, k] = 0.0
                continue
            for j in range(H):
                u = hn[b, j] + b_hh[2 * H + j]
                r = r_all[b, t, j]
                n = _tanh(zx[b, t, 2 * H + j] + (r * u if reset_after else u))
                hp = h[b, j]
                y[b, t, j] = n + z_all[b, t, j] * (hp - n)
                if save:
                    n_all[b, t, j] = n
                    hp_all[b, t, j] = hp
                    h_in_all[b, t, j] = h_in[b, j]
                    hn_all[b, t, j] = u if reset_after else rh[b, j]
            for j in range(H):
                h[b, j] = y[b, t, j]


@njit(cache=True, fastmath=True, nogil=True)
def gru_backward(reset_after, has_mask, has_rmask, dy, dh, W_rz, W_n, mask, rmask,
                 r_all, z_all, n_all, hp_all, h_in_all, hn_all, dZx, dZh_rz, dZh_n):
    """GRU backward sweep: fills the per-step gradients wrt the input pre-activations ``dZx``,
    the recurrent ``r, z`` pre-activations ``dZh_rz`` and the ``n`` block ``dZh_n``; leaves the
    gradient wrt the initial state in ``dh``. ``W_rz (2H, H)``, ``W_n (H, H)``."""
    B, T, H = dy.shape
    dt = dy.dtype
    src_rz = np.empty((B, 2 * H), dt)
    src_n = np.empty((B, H), dt)
    direct = np.empty((B, H), dt)
    for t in range(T - 1, -1, -1):
        for b in range(B):
            live = not has_mask or mask[b, t]
            for j in range(H):
                if not live:
                    dZx[b, t, H + j] = 0.0
                    dZx[b, t, 2 * H + j] = 0.0
                    src_n[b, j] = 0.0
                    continue
                dhn = dh[b, j] + dy[b, t, j]
                z = z_all[b, t, j]
                n = n_all[b, t, j]
                dZx[b, t, H + j] = dhn * (hp_all[b, t, j] - n) * z * (1.0 - z)
                dzn = dhn * (1.0 - z) * (1.0 - n * n)
                dZx[b, t, 2 * H + j] = dzn
                src_n[b, j] = dzn * r_all[b, t, j] if reset_after else dzn
                direct[b, j] = dhn * z
        # reset_after=False: the reset gate's gradient needs W_hn^T dz_n first
        drh = np.dot(src_n, W_n) if not reset_after else src_n
        for b in range(B):
            live = not has_mask or mask[b, t]
            for j in range(H):
                if not live:
                    dZx[b, t, j] = 0.0
                    src_rz[b, j] = 0.0
                    src_rz[b, H + j] = 0.0
                    continue
                r = r_all[b, t, j]
                if reset_after:
                    dzr = dZx[b, t, 2 * H + j] * hn_all[b, t, j] * r * (1.0 - r)
                else:
                    dzr = drh[b, j] * h_in_all[b, t, j] * r * (1.0 - r)
                dZx[b, t, j] = dzr
                src_rz[b, j] = dzr
                src_rz[b, H + j] = dZx[b, t, H + j]
            for j in range(2 * H):
                dZh_rz[b, t, j] = src_rz[b, j]
            for j in range(H):
                dZh_n[b, t, j] = src_n[b, j]
        acc = np.dot(src_rz, W_rz)  # (B, H)
        if reset_after:
            acc += np.dot(src_n, W_n)
        for b in range(B):
            if has_mask and not mask[b, t]:
                continue
            for k in range(H):
                g = acc[b, k] if reset_after else acc[b, k] + drh[b, k] * r_all[b, t, k]
                dh[b, k] = direct[b, k] + (g * rmask[b, k] if has_rmask else g)
