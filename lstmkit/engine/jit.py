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

import numpy as np

log = logging.getLogger(__name__)

try:  # pragma: no cover - exercised through AVAILABLE
    from numba import njit

    AVAILABLE = True
except Exception:  # numba missing or broken on this platform
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
def lstm_forward(cfg, zx, W_hh, W_hr, w_ci, w_cf, w_co, ln_hh_w, ln_c_w, ln_c_b, mask, rmask, h, c,
                 y, gates, c_all, tc_all, h_in_all, hr_all, zh_xhat, zh_rstd, cc_xhat, cc_rstd, save):
    """Forward recurrence. ``zx (B, T, GH)`` holds each step's input term and the biases; ``h``
    and ``c`` are updated in place to the final state; ``y (B, T, P)`` receives the outputs."""
    B, T, GH = zx.shape
    P = W_hh.shape[1]
    H = c.shape[1]
    gi, gf, gg, go = cfg[GI], cfg[GF], cfg[GG], cfg[GO]
    dt = zx.dtype
    h_in = np.empty(P, dt)
    z = np.empty(GH, dt)
    cn = np.empty(H, dt)
    cc = np.empty(H, dt)
    hr = np.empty(H, dt)
    ov = np.empty(H, dt)
    for t in range(T):
        for b in range(B):
            if cfg[MASK] and not mask[b, t]:
                for k in range(P):
                    y[b, t, k] = 0.0
                if save:
                    for j in range(H):
                        c_all[b, t + 1, j] = c[b, j]
                continue
            for k in range(P):
                h_in[k] = h[b, k] * rmask[b, k] if cfg[RMASK] else h[b, k]
            for j in range(GH):
                s = 0.0
                for k in range(P):
                    s += W_hh[j, k] * h_in[k]
                z[j] = s
            if cfg[LN]:
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
                    if cfg[PEEP_I]:
                        zi += w_ci[j] * cp
                    i = _sigmoid(zi)
                else:
                    i = 1.0
                if cfg[FORGET] == 0:
                    zf = z[gf * H + j]
                    if cfg[PEEP_F]:
                        zf += w_cf[j] * cp
                    f = _sigmoid(zf)
                elif cfg[FORGET] == 2:
                    f = 1.0 - i
                else:
                    f = 1.0
                zg = z[gg * H + j]
                g = math.tanh(zg) if cfg[TANH_IN] else zg
                cj = f * cp + i * g
                if go >= 0:
                    zo = z[go * H + j]
                    if cfg[PEEP_O]:
                        zo += w_co[j] * cj
                    o = _sigmoid(zo)
                else:
                    o = 1.0
                cn[j] = cj
                cc[j] = cj
                ov[j] = o
                if save:
                    gates[b, t, 0, j] = i
                    gates[b, t, 1, j] = f
                    gates[b, t, 2, j] = g
                    gates[b, t, 3, j] = o
            if cfg[LN]:
                r = _ln_rows(cc, H)
                if save:
                    cc_rstd[b, t] = r
                    for j in range(H):
                        cc_xhat[b, t, j] = cc[j]
                for j in range(H):
                    cc[j] = cc[j] * ln_c_w[j] + ln_c_b[j]
            for j in range(H):
                tc = math.tanh(cc[j]) if cfg[TANH_OUT] else cc[j]
                hr[j] = ov[j] * tc
                if save:
                    tc_all[b, t, j] = tc
            if cfg[PROJ]:
                for k in range(P):
                    s = 0.0
                    for j in range(H):
                        s += W_hr[k, j] * hr[j]
                    h[b, k] = s
                    y[b, t, k] = s
                if save:
                    for j in range(H):
                        hr_all[b, t, j] = hr[j]
            else:
                for k in range(P):
                    h[b, k] = hr[k]
                    y[b, t, k] = hr[k]
            for j in range(H):
                c[b, j] = cn[j]
            if save:
                for k in range(P):
                    h_in_all[b, t, k] = h_in[k]
                for j in range(H):
                    c_all[b, t + 1, j] = cn[j]


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
    dt = dy.dtype
    dhn = np.empty(P, dt)
    dhr = np.empty(H, dt)
    dcc = np.empty(H, dt)
    tmp = np.empty(max(H, GH), dt)
    dzo = np.empty(H, dt)
    acc = np.empty(P, dt)
    for t in range(T - 1, -1, -1):
        for b in range(B):
            if cfg[MASK] and not mask[b, t]:
                for j in range(GH):
                    dZ[b, t, j] = 0.0
                    if cfg[LN]:
                        dZh[b, t, j] = 0.0
                if cfg[PROJ]:
                    for k in range(P):
                        dH_new[b, t, k] = 0.0
                continue
            for k in range(P):
                dhn[k] = dh[b, k] + dy[b, t, k]
            if cfg[PROJ]:
                for j in range(H):
                    dhr[j] = 0.0
                for k in range(P):
                    dH_new[b, t, k] = dhn[k]
                    s = dhn[k]
                    for j in range(H):
                        dhr[j] += W_hr[k, j] * s
            else:
                for j in range(H):
                    dhr[j] = dhn[j]
            for j in range(H):
                o = gates[b, t, 3, j]
                tc = tc_all[b, t, j]
                dtc = dhr[j] * o
                dcc[j] = dtc * (1.0 - tc * tc) if cfg[TANH_OUT] else dtc
                dzo[j] = dhr[j] * tc * o * (1.0 - o)
            if cfg[LN]:
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
                    if cfg[PEEP_O]:
                        dcn += dzo[j] * w_co[j]
                        dpeep[2, j] += dzo[j] * c_all[b, t + 1, j]
                    dZ[b, t, go * H + j] = dzo[j]
                dg = dcn * i
                dZ[b, t, gg * H + j] = dg * (1.0 - g * g) if cfg[TANH_IN] else dg
                dcp = dcn * f
                if gi >= 0:
                    di = dcn * g
                    if cfg[FORGET] == 2:
                        di -= dcn * cp
                    dzi = di * i * (1.0 - i)
                    dZ[b, t, gi * H + j] = dzi
                    if cfg[PEEP_I]:
                        dcp += dzi * w_ci[j]
                        dpeep[0, j] += dzi * cp
                if cfg[FORGET] == 0:
                    dzf = dcn * cp * f * (1.0 - f)
                    dZ[b, t, gf * H + j] = dzf
                    if cfg[PEEP_F]:
                        dcp += dzf * w_cf[j]
                        dpeep[1, j] += dzf * cp
                dc[b, j] = dcp
            if cfg[LN]:
                for j in range(GH):
                    dln_hh[j] += dZ[b, t, j] * zh_xhat[b, t, j]
                    tmp[j] = dZ[b, t, j] * ln_hh_w[j]
                _ln_back(tmp, zh_xhat[b, t], zh_rstd[b, t], dZh[b, t], GH)
                src = dZh[b, t]
            else:
                src = dZ[b, t]
            for k in range(P):
                acc[k] = 0.0
            for j in range(GH):
                s = src[j]
                for k in range(P):
                    acc[k] += W_hh[j, k] * s
            for k in range(P):
                dh[b, k] = acc[k] * rmask[b, k] if cfg[RMASK] else acc[k]


@njit(cache=True, fastmath=True, nogil=True)
def gru_forward(reset_after, has_mask, has_rmask, zx, W_hh, b_hh, mask, rmask, h,
                y, r_all, z_all, n_all, hp_all, h_in_all, hn_all, save):
    """GRU forward recurrence; ``zx (B, T, 3H)`` includes ``bias_ih``; ``h`` updated in place.
    ``hn_all`` saves ``W_hn h_in + b_hn`` (reset_after) or ``r * h_in`` (otherwise)."""
    B, T, H3 = zx.shape
    H = H3 // 3
    dt = zx.dtype
    h_in = np.empty(H, dt)
    hh = np.empty(H3, dt)
    rh = np.empty(H, dt)
    for t in range(T):
        for b in range(B):
            if has_mask and not mask[b, t]:
                for k in range(H):
                    y[b, t, k] = 0.0
                continue
            for k in range(H):
                h_in[k] = h[b, k] * rmask[b, k] if has_rmask else h[b, k]
            rows = H3 if reset_after else 2 * H
            for j in range(rows):
                s = b_hh[j]
                for k in range(H):
                    s += W_hh[j, k] * h_in[k]
                hh[j] = s
            for j in range(H):
                r = _sigmoid(zx[b, t, j] + hh[j])
                z = _sigmoid(zx[b, t, H + j] + hh[H + j])
                r_all[b, t, j] = r
                z_all[b, t, j] = z
                rh[j] = r * h_in[j]
            if not reset_after:
                for j in range(H):
                    s = b_hh[2 * H + j]
                    for k in range(H):
                        s += W_hh[2 * H + j, k] * rh[k]
                    hh[2 * H + j] = s
            for j in range(H):
                r = r_all[b, t, j]
                if reset_after:
                    n = math.tanh(zx[b, t, 2 * H + j] + r * hh[2 * H + j])
                else:
                    n = math.tanh(zx[b, t, 2 * H + j] + hh[2 * H + j])
                hp = h[b, j]
                hn = n + z_all[b, t, j] * (hp - n)
                if save:
                    n_all[b, t, j] = n
                    hp_all[b, t, j] = hp
                    h_in_all[b, t, j] = h_in[j]
                    hn_all[b, t, j] = hh[2 * H + j] if reset_after else rh[j]
                y[b, t, j] = hn
            for j in range(H):
                h[b, j] = y[b, t, j]


@njit(cache=True, fastmath=True, nogil=True)
def gru_backward(reset_after, has_mask, has_rmask, dy, dh, W_hh, mask, rmask,
                 r_all, z_all, n_all, hp_all, h_in_all, hn_all, dZx, dZh_rz, dZh_n):
    """GRU backward sweep: fills the per-step gradients wrt the input pre-activations ``dZx``,
    the recurrent ``r, z`` pre-activations ``dZh_rz`` and the ``n`` block ``dZh_n``; leaves the
    gradient wrt the initial state in ``dh``."""
    B, T, H = dy.shape
    dt = dy.dtype
    acc = np.empty(H, dt)
    drh = np.empty(H, dt)
    for t in range(T - 1, -1, -1):
        for b in range(B):
            if has_mask and not mask[b, t]:
                for j in range(3 * H):
                    dZx[b, t, j] = 0.0
                for j in range(2 * H):
                    dZh_rz[b, t, j] = 0.0
                for j in range(H):
                    dZh_n[b, t, j] = 0.0
                continue
            for j in range(H):
                dhn = dh[b, j] + dy[b, t, j]
                z = z_all[b, t, j]
                n = n_all[b, t, j]
                dzz = dhn * (hp_all[b, t, j] - n) * z * (1.0 - z)
                dzn = dhn * (1.0 - z) * (1.0 - n * n)
                dZx[b, t, H + j] = dzz
                dZx[b, t, 2 * H + j] = dzn
                dZh_rz[b, t, H + j] = dzz
                dh[b, j] = dhn * z  # the direct path; the gate paths are added below
            if not reset_after:
                for k in range(H):
                    drh[k] = 0.0
                for j in range(H):
                    s = dZx[b, t, 2 * H + j]
                    for k in range(H):
                        drh[k] += W_hh[2 * H + j, k] * s
            for j in range(H):
                r = r_all[b, t, j]
                dzn = dZx[b, t, 2 * H + j]
                if reset_after:
                    dzr = dzn * hn_all[b, t, j] * r * (1.0 - r)
                    dZh_n[b, t, j] = dzn * r
                else:
                    dzr = drh[j] * h_in_all[b, t, j] * r * (1.0 - r)
                    dZh_n[b, t, j] = dzn
                dZx[b, t, j] = dzr
                dZh_rz[b, t, j] = dzr
            for k in range(H):
                acc[k] = 0.0 if reset_after else drh[k] * r_all[b, t, k]
            for j in range(2 * H):
                s = dZh_rz[b, t, j]
                for k in range(H):
                    acc[k] += W_hh[j, k] * s
            if reset_after:
                for j in range(H):
                    s = dZh_n[b, t, j]
                    for k in range(H):
                        acc[k] += W_hh[2 * H + j, k] * s
            for k in range(H):
                dh[b, k] += acc[k] * rmask[b, k] if has_rmask else acc[k]
