"""The compiled kernels' matrix product (lstmkit.engine.jit._gemm and _rows_dot)."""

import numpy as np
import pytest
import torch

from lstmkit.cells import LSTMCell
from lstmkit.engine import fused, jit

if not jit.AVAILABLE:
    pytest.fail("numba is a dependency of lstmkit but could not be imported", pytrace=False)

from numba import njit  # noqa: E402


@njit
def _rows_product(a, b, out):
    jit._rows_dot(a, b, out)


@njit
def _gemm_product(a, b, out):
    jit._gemm(a, b, out)


def test_a_blas_is_registered_and_passes_its_check_product():
    from numba.extending import get_cython_function_address

    assert jit.BLAS in ("torch-mkl", "scipy-openblas")
    # the check itself tells a right gemm from a wrong one: scipy's passes, a swapped one fails
    assert jit._check_gemm(get_cython_function_address("scipy.linalg.cython_blas", "sgemm"), np.float32)
    assert jit._check_gemm(get_cython_function_address("scipy.linalg.cython_blas", "dgemm"), np.float64)
    # a gemm of the other precision fails it without writing outside the check's buffers
    assert not jit._check_gemm(get_cython_function_address("scipy.linalg.cython_blas", "dgemm"), np.float32)
    assert not jit._check_gemm(get_cython_function_address("scipy.linalg.cython_blas", "sgemm"), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 3, 7, 8, 33])
def test_rows_dot_equals_numpy_in_compiled_code(dtype, rows):
    rng = np.random.default_rng(rows)
    a, b = rng.standard_normal((rows, 19)).astype(dtype), rng.standard_normal((19, 45)).astype(dtype)
    out = np.full((rows, 45), np.nan, dtype)
    _rows_product(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


@njit
def _rows_product_t(a, w, out):
    jit._rows_dot_t(a, w, out)


@njit
def _gemm_nt_product(a, w, out):
    jit._gemm_nt(a, w, out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 3, 7, 8, 33])
def test_the_product_with_a_weight_as_torch_stores_it_equals_numpy(dtype, rows):
    # out = a @ w.T with w (N, K) as it is: the forward kernel's recurrent and projection products
    rng = np.random.default_rng(rows)
    a, w = rng.standard_normal((rows, 19)).astype(dtype), rng.standard_normal((45, 19)).astype(dtype)
    tol = dict(rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    for product in (_rows_product_t, _gemm_nt_product):
        out = np.full((rows, 45), np.nan, dtype)
        product(a, w, out)
        np.testing.assert_allclose(out, a @ w.T, **tol)
    with pytest.raises(ValueError, match="shapes of a, w and out"):
        _gemm_nt_product(a, w[:, :18].copy(), np.zeros((rows, 45), dtype))
    with pytest.raises(ValueError, match="shapes of a, w and out"):
        _gemm_nt_product(a, w, np.zeros((rows, 44), dtype))


@pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaPerformanceWarning")
def test_gemm_of_non_contiguous_operands_falls_back_to_numpy():
    rng = np.random.default_rng(0)
    big = rng.standard_normal((12, 10))
    a, b = big[::2, :5], big[:5, ::2]  # strided views
    out = np.zeros((6, 5))
    _gemm_product(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)


def test_gemm_refuses_operands_whose_shapes_do_not_match():
    a, b = np.ones((9, 4)), np.ones((5, 6))
    with pytest.raises(ValueError, match="shapes of a, b and out"):
        _gemm_product(a, b, np.zeros((9, 6)))
    with pytest.raises(ValueError, match="shapes of a, b and out"):
        _gemm_product(a, np.ones((4, 6)), np.zeros((9, 5)))
    with pytest.raises(Exception, match="must share float32 or float64"):  # at compile time
        _gemm_product(a.astype(np.float32), np.ones((4, 6)), np.zeros((9, 6)))


def test_layer_norm_takes_the_compiled_sweep_at_every_size_with_mkl():
    x = torch.zeros(1, 5, 3)
    layernorm = LSTMCell(3, 4, variant="layernorm").variant
    assert fused.use_jit(layernorm, 10**6, 4 * 512, x) == (fused.JIT_ENABLED and jit.BLAS == "torch-mkl")


def _wide_cells():
    from lstmkit.cells import GRUCell, RNNCell

    yield "lstm-vanilla", lambda: LSTMCell(4, 5)
    yield "lstm-peephole-proj", lambda: LSTMCell(4, 5, variant="peephole", proj_size=3)
    yield "lstm-layernorm", lambda: LSTMCell(4, 5, variant="layernorm")
    yield "lstm-cifg", lambda: LSTMCell(4, 5, variant="cifg")
    yield "gru", lambda: GRUCell(4, 5)
    yield "gru-reset-before", lambda: GRUCell(4, 5, reset_after=False)
    yield "rnn", lambda: RNNCell(4, 5)


WIDE = dict(_wide_cells())


@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked+recurrent-dropout"])
@pytest.mark.parametrize("name", list(WIDE))
def test_compiled_sweep_with_the_batch_wide_product_equals_reference(name, masked, monkeypatch):
    # 11 sequences: above _GEMV_MAX_ROWS, so each step's product goes through _gemm (the tests
    # in test_paths.py use 3, which take the per-row product)
    from lstmkit.engine import run
    from tests.helpers import max_diff, randomize, weighted_sum

    monkeypatch.setattr(fused, "JIT_ENABLED", True)
    batch, steps = 11, 7
    assert batch > jit._GEMV_MAX_ROWS
    cell = randomize(WIDE[name]().double(), seed=len(name))
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(batch, steps, 4, generator=gen, dtype=torch.double, requires_grad=True)
    state = tuple(torch.randn(s.shape, generator=gen, dtype=torch.double).requires_grad_()
                  for s in cell.initial_state(batch))
    mask = rmask = None
    if masked:
        mask = torch.rand(batch, steps, generator=gen) > 0.3
        rmask = (torch.rand(batch, state[0].shape[1], generator=gen, dtype=torch.double) > 0.3).double() / 0.7
    results = []
    for engine in ("reference", "fused"):
        y, final = run(cell, x, state, mask, rmask, engine=engine)
        grads = torch.autograd.grad(weighted_sum([y, *final]), [x, *state, *cell.parameters()])
        results.append(([y, *final], grads))
    assert fused.use_jit(getattr(cell, "variant", None), batch, 4 * 5, x)
    assert max_diff(results[1][0], results[0][0]) < 1e-12
    assert max_diff(results[1][1], results[0][1]) < 1e-12


def test_the_scipy_fallback_computes_the_same_function():
    # LSTMKIT_BLAS=scipy makes the kernels call scipy's BLAS, as where torch's library has no MKL
    import os
    import subprocess
    import sys

    script = """
import torch
from lstmkit.cells import GRUCell, LSTMCell
from lstmkit.engine import fused, jit, run
from tests.helpers import max_diff, randomize
assert jit.BLAS == "scipy-openblas", jit.BLAS
assert fused.JIT_MAX_GATE_ROWS == 512
for cell in (LSTMCell(4, 5, variant="peephole"), GRUCell(4, 5)):
    cell = randomize(cell.double())
    x = torch.randn(11, 6, 4, dtype=torch.double)
    state = cell.initial_state(11)
    with torch.no_grad():
        (y, final), (y_ref, final_ref) = (run(cell, x, state, engine=e) for e in ("fused", "reference"))
    assert max_diff([y, *final], [y_ref, *final_ref]) < 1e-12
print("ok")
"""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "LSTMKIT_BLAS": "scipy", "PYTHONPATH": root}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
