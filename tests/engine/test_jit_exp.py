"""The vectorised exp of the compiled kernels (lstmkit.engine.jit): accuracy against numpy's exp,
the clamp, and sigmoid and tanh built on it staying finite and in range, alone and in the kernels."""

import numpy as np
import pytest
import torch

from lstmkit.cells import GRUCell, LSTMCell
from lstmkit.engine import fused, jit, run

pytestmark = pytest.mark.skipif(not jit.AVAILABLE, reason="the compiled kernels need numba")

if jit.AVAILABLE:
    from numba import njit

    # jit._exp is numpy's exp when called from Python: these run the compiled loops
    @njit
    def compiled_exp(x, out):
        jit._exp(x, out)

    @njit
    def sigmoid_and_tanh(z):
        """As the kernels build them: sigmoid from exp(-z), tanh from exp(2z)."""
        e_neg, e_2z = np.empty_like(z), np.empty_like(z)
        jit._exp(-z, e_neg)
        jit._exp(z + z, e_2z)
        sig, tanh = np.empty_like(z), np.empty_like(z)
        for k in range(z.size):
            sig[k] = jit._sigmoid_of_exp(e_neg[k])
            tanh[k] = jit._tanh_of_exp(e_2z[k])
        return sig, tanh


LIMIT = {np.float64: 700.0, np.float32: 87.0}  # the clamp of each dtype


def exp_of(x):
    out = np.full_like(x, np.nan)
    compiled_exp(x, out)
    return out


def test_exp_float64_relative_error_below_1e_15():
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.uniform(-700, 700, 100_000),
        rng.uniform(-1, 1, 10_000),
        np.geomspace(1e-300, 1e-3, 1000) * rng.choice([-1, 1], 1000),
        # the ends of the reduced range, where |r| = ln2 / 2
        (np.arange(-1000, 1000) + 0.5) * np.log(2),
        [-700.0, 700.0, 0.0, 5e-324],
    ])
    rel = np.abs(exp_of(x) / np.exp(x) - 1)
    assert rel.max() < 1e-15, f"worst at x = {x[rel.argmax()]!r}: {rel.max():.2e}"


def test_exp_float32_relative_error_below_5e_7():
    rng = np.random.default_rng(1)
    x = np.concatenate([
        rng.uniform(-87, 87, 100_000),
        rng.uniform(-1, 1, 10_000),
        np.geomspace(1e-38, 1e-3, 1000) * rng.choice([-1, 1], 1000),
        [-87.0, 87.0, 0.0],
    ]).astype(np.float32)
    y = exp_of(x)
    assert y.dtype == np.float32
    rel = np.abs(y / np.exp(x.astype(np.float64)) - 1)
    assert rel.max() < 5e-7, f"worst at x = {x[rel.argmax()]!r}: {rel.max():.2e}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_clamps_and_keeps_signed_zero_exact(dtype):
    lim = LIMIT[dtype]
    x = np.array([-0.0, 0.0, lim, -lim, 2 * lim, -2 * lim, 1e4, -1e4, 1e30, -1e30], dtype=dtype)
    y = exp_of(x)
    assert np.all(np.isfinite(y)) and np.all(y > 0)
    assert y[0] == 1.0 and y[1] == 1.0
    hi, lo = exp_of(np.array([lim, -lim], dtype=dtype))
    assert np.all(y[[4, 6, 8]] == hi) and np.all(y[[5, 7, 9]] == lo)
    np.testing.assert_allclose([hi, lo], np.exp(np.array([lim, -lim])), rtol=5e-7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_and_tanh_finite_and_in_range(dtype):
    z = np.array([-1e4, -1e3, -100, -50, -20, -1, -1e-3, -0.0, 0.0, 1e-3, 1, 20, 50, 100, 1e3, 1e4],
                 dtype=dtype)
    sig, tanh = sigmoid_and_tanh(z)
    assert sig.dtype == dtype and tanh.dtype == dtype
    assert np.all(np.isfinite(sig)) and np.all((sig >= 0) & (sig <= 1))
    assert np.all(np.isfinite(tanh)) and np.all((tanh >= -1) & (tanh <= 1))
    assert sig[-1] == 1.0 and tanh[-1] == 1.0 and tanh[0] == -1.0
    assert sig[0] < 1e-30
    z64 = z.astype(np.float64)
    atol = 1e-15 if dtype == np.float64 else 2e-7
    np.testing.assert_allclose(sig, 0.5 + 0.5 * np.tanh(z64 / 2), rtol=0, atol=atol)
    np.testing.assert_allclose(tanh, np.tanh(z64), rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("make", [lambda: LSTMCell(4, 5), lambda: LSTMCell(4, 5, variant="peephole"),
                                  lambda: GRUCell(4, 5)], ids=["lstm", "lstm-peephole", "gru"])
def test_kernels_saturate_cleanly(make, dtype, monkeypatch):
    """Pre-activations of order 1e4: outputs finite, within [-1, 1], and (in float64) equal to
    the reference loop's."""
    monkeypatch.setattr(fused, "JIT_ENABLED", True)
    calls = []
    for name in ("lstm_forward", "gru_forward"):
        kernel = getattr(jit, name)
        monkeypatch.setattr(jit, name, lambda *a, kernel=kernel: calls.append(1) or kernel(*a))
    torch.manual_seed(0)
    cell = make().to(dtype)
    with torch.no_grad():
        for p in cell.parameters():
            p.mul_(1e3)
    x = torch.randn(3, 7, 4, dtype=dtype) * 10
    state = cell.initial_state(3)
    with torch.no_grad():
        y, _ = run(cell, x, state, engine="fused")
        y_ref, _ = run(cell, x, state, engine="reference")
    assert calls, "the compiled kernel did not run"
    assert torch.isfinite(y).all() and y.abs().max() <= 1
    if dtype == torch.float64:
        assert (y - y_ref).abs().max() < 1e-9
