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

import ctypes
import logging
import math
import os
import sys

import numpy as np

log = logging.getLogger(__name__)

# The per-step products are small; BLAS threads only add synchronisation to each of them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:  # pragma: no cover - exercised through AVAILABLE
    import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot calls this BLAS)
    from numba import njit, types
    from numba.extending import overload

    AVAILABLE = True
except Exception:  # numba or scipy missing or broken on this platform
    AVAILABLE = False

    def njit(*args, **kwargs):
        def wrap(fn):
            return fn

        return wrap(args[0]) if args and callable(args[0]) else wrap


# cfg indices for the LSTM kernels
GI, GF, GG, GO, FORGET, TANH_IN, TANH_OUT, LN, PROJ, MASK, RMASK, PEEP_I, PEEP_F, PEEP_O = range(14)


# ---------------------------------------------------------------------------------------------
# exp over an array, vectorisable
#
# Every gate is a sigmoid 1 / (1 + e^-z) or a tanh 1 - 2 / (e^2z + 1), so the forward kernels
# spend most of their arithmetic in exp. libm's exp is a scalar call (~5 ns an element here) and
# numba's LLVM has no vector math library, so the kernels collect each step's arguments in an
# array and call _exp on it, a loop LLVM vectorises (AVX2: ~1.5 ns an element in float64, ~0.5 ns
# in float32). The method: x = n ln2 + r with n an integer and |r| <= ln2/2; exp(r) by its Taylor
# polynomial; 2^n built from its exponent bits. n is rounded by adding and subtracting 1.5 2^m
# (m the mantissa width), which leaves n in the low mantissa bits of the sum; the functions are
# compiled without `reassoc`, which would fold (v + 1.5 2^m) - 1.5 2^m back into v.
# The argument is clamped where exp stays normal, so that 1 + e and e + 1 never overflow: the
# sigmoid and tanh built on it are finite and in range for every finite input.

_EXP_FASTMATH = {"nnan", "ninf", "nsz", "arcp", "contract", "afn"}  # fastmath=True less reassoc

# float64: |r| <= ln2/2 and degree 13 leave a truncation error below 5e-18, under half an ulp
_EXP64_MIN, _EXP64_MAX = -700.0, 700.0  # exp = 1e-304 .. 1e304; n = -1010 .. 1010
_LOG2E = 1.4426950408889634
_SHIFT64 = 6755399441055744.0  # 1.5 * 2**52
_SHIFT64_BITS = 0x4338000000000000
_LN2_HI_64 = 0.6931471803691238  # ln2 in two parts; n * _LN2_HI_64 is exact for |n| < 2**21
_LN2_LO_64 = 1.9082149292705877e-10
_C64 = tuple(1.0 / math.factorial(k) for k in range(14))

# float32: degree 7 leaves 1e-8; the constants are float32 so that nothing promotes to float64
_F32 = np.float32
_EXP32_MIN, _EXP32_MAX = _F32(-87.0), _F32(87.0)  # exp = 2e-38 .. 6e37; n = -126 .. 126
_LOG2E_32 = _F32(_LOG2E)
_SHIFT32 = _F32(12582912.0)  # 1.5 * 2**23
_SHIFT32_BITS = 0x4B400000
_LN2_HI_32 = _F32(0.693359375)  # 9 bits: n * _LN2_HI_32 is exact
_LN2_LO_32 = _F32(-2.12194440e-4)
_C32 = tuple(_F32(1.0 / math.factorial(k)) for k in range(8))

# 1 and 2 as float32 promote exactly to float64: the gate formulas keep the array's precision
_ONE, _TWO = _F32(1.0), _F32(2.0)


@njit(cache=True, fastmath=_EXP_FASTMATH, nogil=True)
def _exp64(x, out):
    """``out[:] = exp(x)`` for 1-D float64 arrays. ``out`` may be ``x``, but then the loop does
    not vectorise: LLVM's overlap check fails and it runs the scalar version."""
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = _C64
    for k in range(x.size):
        v = min(max(x[k], _EXP64_MIN), _EXP64_MAX)
        t = v * _LOG2E + _SHIFT64  # 1.5 2^52 + n: n in the low bits
        n = t - _SHIFT64
        r = v - n * _LN2_HI_64 - n * _LN2_LO_64
        p = c0 + r * (c1 + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * (
            c7 + r * (c8 + r * (c9 + r * (c10 + r * (c11 + r * (c12 + r * c13))))))))))))
        two_n = np.int64((np.float64(t).view(np.int64) - _SHIFT64_BITS + 1023) << 52).view(np.float64)
        out[k] = p * two_n


@njit(cache=True, fastmath=_EXP_FASTMATH, nogil=True)
def _exp32(x, out):
    """``out[:] = exp(x)`` for 1-D float32 arrays; as _exp64, vectorised only out of place."""
    c0, c1, c2, c3, c4, c5, c6, c7 = _C32
    for k in range(x.size):
        v = min(max(x[k], _EXP32_MIN), _EXP32_MAX)
        t = v * _LOG2E_32 + _SHIFT32  # 1.5 2^23 + n: n in the low bits
        n = t - _SHIFT32
        r = v - n * _LN2_HI_32 - n * _LN2_LO_32
        p = c0 + r * (c1 + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * c7))))))
        two_n = np.int32((np.float32(t).view(np.int32) - _SHIFT32_BITS + 127) << 23).view(np.float32)
        out[k] = p * two_n


def _exp(x, out):
    """``out[:] = exp(x)`` for a 1-D float32 or float64 array; in compiled code, the vectorised
    loop of the array's dtype (this Python body runs only when called from Python)."""
    np.exp(x, out=out)


if AVAILABLE:

    @overload(_exp)
    def _exp_compiled(x, out):
        if x.dtype == types.float32:
            return lambda x, out: _exp32(x, out)
        return lambda x, out: _exp64(x, out)


@njit(cache=True, fastmath=True, error_model="numpy", nogil=True, inline="always")
def _sigmoid_of_exp(e):
    """sigmoid(z), given ``e = exp(-z)``."""
    return _ONE / (_ONE + e)


@njit(cache=True, fastmath=True, error_model="numpy", nogil=True, inline="always")
def _tanh_of_exp(e):
    """tanh(z), given ``e = exp(2 z)``: 1 - 2 / (e^2z + 1)."""
    return _ONE - _TWO / (e + _ONE)


@njit(cache=True, fastmath=True, nogil=True)
def _ln_stats(v, n):
    """``(mean, 1 / sqrt(var + eps))`` of v[:n] (two passes: no cancellation in the variance)."""
    mean = 0.0
    for j in range(n):
        mean += v[j]
    mean /= n
    m = v.dtype.type(mean)  # the row's dtype in the element loops: float32 rows stay 8 wide
    var = 0.0
    for j in range(n):
        d = v[j] - m
        var += d * d
    var /= n
    return mean, 1.0 / math.sqrt(var + 1e-5)


@njit(cache=True, fastmath=True, nogil=True)
def _ln_rows(v, n):
    """In place: normalise v[:n]; returns rstd."""
    mean, rstd = _ln_stats(v, n)
    m, r = v.dtype.type(mean), v.dtype.type(rstd)
    for j in range(n):
        v[j] = (v[j] - m) * r
    return rstd


@njit(cache=True, fastmath=True, nogil=True)
def _ln_back(d, xhat, rstd, out, n):
    """out = gradient through the normalisation, given d = dL/dxhat."""
    m1 = 0.0
    m2 = 0.0
    for j in range(n):
        m1 += d[j]
        m2 += d[j] * xhat[j]
    t = out.dtype.type  # the sums in float64, the element loop in the row's dtype
    a1, a2, r = t(m1 / n), t(m2 / n), t(rstd)
    for j in range(n):
        out[j] = r * (d[j] - a1 - xhat[j] * a2)


@njit(cache=True, nogil=True, inline="always")
def _flags(cfg):
    """The LSTM kernels' configuration flags, in the order of their cfg indices FORGET .. PEEP_O."""
    return (cfg[FORGET], cfg[TANH_IN], cfg[TANH_OUT], cfg[LN], cfg[PROJ], cfg[MASK], cfg[RMASK],
            cfg[PEEP_I], cfg[PEEP_F], cfg[PEEP_O])


# ---------------------------------------------------------------------------------------------
# the step's matrix product
#
# numba's np.dot calls scipy's OpenBLAS, single-threaded here (its own thread pool fights torch's
# OpenMP threads for the two cores). torch's CPU library carries MKL and exports its Fortran
# sgemm_/dgemm_, which run on torch's OpenMP threads, idle while a kernel runs: at (32, 128) x
# (128, 512) 61 us against OpenBLAS's 82-86 us, at (16, 64) x (64, 256) 7 against 16 us
# (docs/performance.md). The kernels call it through a symbol registered with LLVM at import, so
# the compiled (and cached) code names the symbol, not an address; where torch's library does not
# export it, or it fails a check product, the symbol points at scipy's OpenBLAS instead.

BLAS = "none"  # which library _gemm calls: "torch-mkl" or "scipy-openblas" (LSTMKIT_BLAS=scipy forces it)
_mkl_threads_local = None  # MKL_Set_Num_Threads_Local where _gemm calls torch's MKL: see run_rows


def _check_gemm(address: int, ctype) -> bool:
    """Whether the Fortran gemm at ``address`` computes a 2x3 @ 3x2 product right in ``ctype``
    with 32-bit integer arguments (the kernels pass them so).

    Safe to call with the wrong gemm: the buffers are padded, so that a gemm of the other
    precision stays inside them, and each size is followed by -1, so that a gemm reading 64-bit
    integers sees a negative size and refuses (BLAS's argument check) instead of reading far."""
    fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 13)(address)
    a, b, out = np.zeros(64, ctype), np.zeros(64, ctype), np.full(64, 7, ctype)
    a[:6] = np.arange(6)
    b[:6] = np.arange(6) - 2
    expected = a[:6].reshape(2, 3) @ b[:6].reshape(3, 2)
    # m, n, k of the column-major product out^T = b^T a^T, each followed by -1
    ints = np.array([2, -1, 2, -1, 3, -1], dtype=np.int32)
    ops = np.frombuffer(b"NN", dtype=np.uint8)
    scal = np.zeros(8, ctype)
    scal[0] = 1

    def ptr(arr, offset=0):
        return arr.ctypes.data + offset * arr.itemsize

    m, n, k = ptr(ints, 0), ptr(ints, 2), ptr(ints, 4)
    fn(ptr(ops), ptr(ops, 1), m, n, k, ptr(scal), ptr(b), m, ptr(a), k, ptr(scal, 1), ptr(out), m)
    return np.array_equal(out[:4].reshape(2, 2), expected) and bool((out[4:] == 7).all())


def _torch_cpu_library():
    """torch's CPU library (``libtorch_cpu``), already loaded with torch, or None where there is
    none to be found. A symbol looked up in it is its own or that of one of its dependencies:
    the instances torch itself uses, not another library's copy loaded elsewhere."""
    import glob

    import torch

    libs = glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "*torch_cpu.*"))
    return ctypes.CDLL(libs[0]) if libs else None


def _register_blas() -> str:
    import llvmlite.binding as llvm

    found = {}
    try:
        if os.environ.get("LSTMKIT_BLAS", "").lower() == "scipy":
            raise LookupError("LSTMKIT_BLAS=scipy")
        lib = _torch_cpu_library()
        # MKL's own symbol: a lookup in the library also searches its dependencies, which on other
        # platforms may export another BLAS's sgemm_, measured nowhere here
        if not hasattr(lib, "MKL_Set_Num_Threads_Local"):
            raise LookupError("torch's library does not carry MKL")
        for name, ctype in (("sgemm_", np.float32), ("dgemm_", np.float64)):
            address = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
            if _check_gemm(address, ctype):
                found[name] = address
        if len(found) == 2:
            global _mkl_threads_local
            _mkl_threads_local = lib.MKL_Set_Num_Threads_Local
            _mkl_threads_local.restype = ctypes.c_int
            _mkl_threads_local.argtypes = [ctypes.c_int]
    except Exception as err:  # no such library or symbol on this platform: scipy's below
        log.debug("torch's MKL gemm is not usable (%s); the kernels use scipy's BLAS", err)
    source = "torch-mkl"
    if len(found) < 2:
        from numba.extending import get_cython_function_address

        found = {f"{c}gemm_": get_cython_function_address("scipy.linalg.cython_blas", f"{c}gemm") for c in "sd"}
        source = "scipy-openblas"
    llvm.add_symbol("lstmkit_sgemm", found["sgemm_"])
    llvm.add_symbol("lstmkit_dgemm", found["dgemm_"])
    return source


if AVAILABLE:
    try:
        BLAS = _register_blas()
    except Exception as err:  # pragma: no cover - numba without scipy's BLAS cannot run np.dot either
        log.warning("lstmkit: no BLAS for the compiled kernels (%s); the fused path runs its torch sweep", err)
        AVAILABLE = False

if AVAILABLE:
    _vp = types.voidptr
    _sgemm = types.ExternalFunction("lstmkit_sgemm", types.void(*[_vp] * 13))
    _dgemm = types.ExternalFunction("lstmkit_dgemm", types.void(*[_vp] * 13))


# ---------------------------------------------------------------------------------------------
# the batch's rows over several threads
#
# A kernel's gate algebra runs on one core while the step's product runs on torch's threads; the
# other core waits. The sequences of a batch are independent, so a kernel can instead run on
# slices of the batch in parallel, one thread each, every slice's product single-threaded. Where
# that pays is fused.row_chunks's rule, measured in docs/performance.md.
#
# The slices run on torch's own OpenMP threads where torch's GNU OpenMP library can be reached
# (a parallel region opened through it, each thread calling back into Python for its slices).
# Threads of our own lost to them: after each torch op torch's OpenMP threads spin for the next
# one (libgomp's default, ~5 ms here) on the core our thread wanted. At (16, 100, 32, 128) x 2,
# the layer-norm forward kernel after a matrix product took 16.8 ms split over a pool thread,
# 10.6 ms split over torch's threads and 14.4 ms unsplit (docs/performance.md).

_OMP_BODY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # a parallel region's function, void (*)(void *)
_pool = None  # (pid, workers, ThreadPoolExecutor): made on first use, and again in a forked child
_omp = None  # torch's GNU OpenMP entry points once looked for, False where there are none


def _load_openmp():
    """torch's GNU OpenMP entry points (``GOMP_parallel``, ``omp_get_*``), looked up through
    torch's own library so that they are the instance torch's ops run on (another package may
    map a libgomp of its own: scikit-learn does), or None (another platform or OpenMP runtime:
    the thread pool then). Linux only: measured and tested there."""
    import torch

    if not sys.platform.startswith("linux"):
        return None
    try:
        lib = _torch_cpu_library()
        if lib is None:
            return None
        lib.GOMP_parallel.argtypes = [_OMP_BODY, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        lib.GOMP_parallel.restype = None
        for name in ("omp_get_thread_num", "omp_get_num_threads", "omp_get_max_threads"):
            getattr(lib, name).restype = ctypes.c_int
        # the same runtime as torch's: it sees the thread count torch set (checked in this thread)
        if lib.omp_get_max_threads() != torch.get_num_threads():
            return None
        return lib
    except (OSError, AttributeError) as err:
        log.debug("torch's OpenMP library is not usable (%s); split kernels run on a thread pool", err)
    return None


def _openmp():
    """The entry points of :func:`_load_openmp`, or None (and always None in a forked child,
    which has none of the parent's OpenMP threads: a parallel region there would wait forever)."""
    global _omp
    if _omp is None:  # (torch, and so its OpenMP library, is loaded: the kernels' callers use it)
        _omp = _load_openmp() or False
    return _omp or None


def _forked():
    global _omp, _pool
    _omp = False
    _pool = None  # its threads are the parent's


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def openmp_threads_available() -> bool:
    """Whether :func:`run_rows` runs its slices on torch's OpenMP threads (else on a pool)."""
    return _openmp() is not None


def _on_openmp(lib, kernel, calls):
    """Each of ``calls`` (argument lists of ``kernel``) on a thread of an OpenMP parallel region of
    ``len(calls)`` threads (fewer if OpenMP gives fewer: each thread takes every n-th), this one
    among them; the first exception raised here.

    A callback cannot raise: what ``body`` raises is carried to the caller, a signal handler's
    exception included (this thread runs Python's handlers, here inside the region). Raised at
    ``body``'s very entry, before its ``try``, ctypes hands it to ``sys.unraisablehook``, which
    catches it for the duration; and a slice left undone without any exception is an error too,
    never a silent gap in the outputs."""
    done = [False] * len(calls)
    errors = []

    def body(_):
        try:
            tid, n = lib.omp_get_thread_num(), lib.omp_get_num_threads()
            for k in range(tid, len(calls), n):
                _single_threaded(kernel, calls[k])
                done[k] = True
        except BaseException as err:
            errors.append(err)

    previous = sys.unraisablehook

    def caught(unraisable):
        if unraisable.object is body:
            errors.append(unraisable.exc_value)
        else:
            previous(unraisable)

    sys.unraisablehook = caught
    try:
        lib.GOMP_parallel(_OMP_BODY(body), None, len(calls), 0)
    finally:
        sys.unraisablehook = previous
    if errors:
        raise errors[0]
    if not all(done):
        raise RuntimeError("run_rows: a slice of the batch did not run (its thread was interrupted)")


def _executor(workers: int):
    global _pool
    from concurrent.futures import ThreadPoolExecutor

    pid = os.getpid()
    # a pool inherited through fork has no threads in the child: its queue would never run
    if _pool is None or _pool[0] != pid or _pool[1] < workers:
        _pool = (pid, workers, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lstmkit-rows"))
    return _pool[2]


def _single_threaded(kernel, args):
    """``kernel(*args)`` with torch's MKL held to one thread in this thread (the product of a
    slice must not wait for a core the other slice holds)."""
    if _mkl_threads_local is None:  # scipy's OpenBLAS: single-threaded already
        return kernel(*args)
    before = _mkl_threads_local(1)
    try:
        return kernel(*args)
    finally:
        _mkl_threads_local(before)


def run_rows(kernel, args, rows: int, batched, accumulated=(), chunks: int = 1):
    """``kernel(*args)`` for a batch of ``rows`` sequences, run as ``chunks`` calls on contiguous
    slices of the batch in parallel (this thread runs the first).

    ``batched``: the positions of the arguments whose first axis is the batch, each sliced
    (a placeholder, of length 1, is passed whole); ``accumulated``: the positions of arrays the
    kernel adds into (summed gradients), which every slice but the first gets as zeros, added
    into the original after. Every other argument is shared and must be read-only. Needs
    ``nogil`` kernels; an exception in any slice is raised here."""
    chunks = min(chunks, rows)
    if chunks <= 1:
        kernel(*args)
        return
    bounds = [rows * k // chunks for k in range(chunks + 1)]
    calls = []
    for k in range(chunks):
        lo, hi = bounds[k], bounds[k + 1]
        part = list(args)
        for i in batched:
            a = args[i]
            if a.shape[0] == rows:
                part[i] = a[lo:hi]
            elif a.size != 1:
                raise ValueError(f"run_rows: argument {i} has {a.shape[0]} rows, not the batch's {rows}")
        if k:
            for i in accumulated:
                part[i] = np.zeros_like(args[i])
        calls.append(part)
    lib = _openmp()
    if lib is not None:
        _on_openmp(lib, kernel, calls)
    else:
        _on_pool(kernel, calls)
    for part in calls[1:]:
        for i in accumulated:
            np.add(args[i], part[i], out=args[i])


def _on_pool(kernel, calls):
    """``calls`` on this thread (the first) and the threads of our pool (the others)."""
    futures, here = [], [calls[0]]
    for part in calls[1:]:
        try:
            futures.append(_executor(len(calls) - 1).submit(_single_threaded, kernel, part))
        except RuntimeError:  # at interpreter exit no thread can be started: this one runs it
            here.append(part)
    try:
        for part in here:
            _single_threaded(kernel, part)
    finally:
        for f in futures:  # every slice finishes before the arrays are read or freed
            f.exception()
    for f in futures:
        f.result()


# ints: M, N, K of the row-major product and the leading dimension of b (N, or K when b is
# passed as the (N, K) matrix it is the transpose of)
@njit(cache=True, nogil=True)
def _gemm32(a, b, out, ints, ops, scal):
    _sgemm(ops.ctypes.data, ops[1:].ctypes.data, ints[1:].ctypes.data, ints.ctypes.data,
           ints[2:].ctypes.data, scal.ctypes.data, b.ctypes.data, ints[3:].ctypes.data, a.ctypes.data,
           ints[2:].ctypes.data, scal[1:].ctypes.data, out.ctypes.data, ints[1:].ctypes.data)


@njit(cache=True, nogil=True)
def _gemm64(a, b, out, ints, ops, scal):
    _dgemm(ops.ctypes.data, ops[1:].ctypes.data, ints[1:].ctypes.data, ints.ctypes.data,
           ints[2:].ctypes.data, scal.ctypes.data, b.ctypes.data, ints[3:].ctypes.data, a.ctypes.data,
           ints[2:].ctypes.data, scal[1:].ctypes.data, out.ctypes.data, ints[1:].ctypes.data)


@njit(cache=True, nogil=True, inline="always")
def _gemm_operands(a, N, ldb, op_b):
    """The integer, operation and scalar arguments of ``_gemm32``/``_gemm64`` for ``out (M, N) =
    a (M, K) @ op(b)``, ``op_b`` "N" (78) or "T" (84) as a byte, ``ldb`` b's leading dimension."""
    ints = np.empty(4, np.int32)
    ints[0], ints[1], ints[2], ints[3] = a.shape[0], N, a.shape[1], ldb
    ops = np.empty(2, np.uint8)
    ops[0], ops[1] = op_b, 78  # op(b), then "N" for a
    scal = np.empty(2, a.dtype)
    scal[0], scal[1] = 1.0, 0.0
    return ints, ops, scal


def _gemm(a, b, out):
    """``out = a @ b`` for C-contiguous ``a (M, K)``, ``b (K, N)``, ``out (M, N)`` of one dtype;
    in compiled code the registered BLAS (this Python body runs only when called from Python)."""
    np.dot(a, b, out=out)


if AVAILABLE:

    def _blas_kernel(name, a, b, out):
        """At typing time: the gemm for these three arrays, or None where one is not C-contiguous
        (the leading dimensions assume C order; NumPy's dot then)."""
        if not (a.dtype == b.dtype == out.dtype) or a.dtype not in (types.float32, types.float64):
            raise TypeError(f"{name}: its three arrays must share float32 or float64, got {a.dtype}, "
                            f"{b.dtype}, {out.dtype}")
        if not (a.layout == b.layout == out.layout == "C"):
            return None
        return _gemm32 if a.dtype == types.float32 else _gemm64

    @overload(_gemm)
    def _gemm_compiled(a, b, out):
        kernel = _blas_kernel("_gemm", a, b, out)
        if kernel is None:
            return lambda a, b, out: np.dot(a, b, out)

        def impl(a, b, out):
            # the BLAS reads and writes what the shapes say: a mismatch must raise, not corrupt
            if a.shape[1] != b.shape[0] or out.shape[0] != a.shape[0] or out.shape[1] != b.shape[1]:
                raise ValueError("_gemm: the shapes of a, b and out do not match")
            # row-major out = a @ b is the column-major out^T = b^T a^T: m = N, n = M, k = K
            kernel(a, b, out, *_gemm_operands(a, b.shape[1], b.shape[1], 78))  # "N"

        return impl


def _gemm_nt(a, w, out):
    """``out = a @ w.T`` for C-contiguous ``a (M, K)``, ``w (N, K)``, ``out (M, N)`` of one dtype:
    a weight used as torch stores it, without a transposed copy; in compiled code the registered
    BLAS (this Python body runs only when called from Python)."""
    np.dot(a, w.T, out=out)


if AVAILABLE:

    @overload(_gemm_nt)
    def _gemm_nt_compiled(a, w, out):
        kernel = _blas_kernel("_gemm_nt", a, w, out)
        if kernel is None:
            return lambda a, w, out: np.dot(a, w.T, out)

        def impl(a, w, out):
            if a.shape[1] != w.shape[1] or out.shape[0] != a.shape[0] or out.shape[1] != w.shape[0]:
                raise ValueError("_gemm_nt: the shapes of a, w and out do not match")
            # column-major out^T = (w^T)^T a^T: the (N, K) w read as K x N with leading dimension K
            kernel(a, w, out, *_gemm_operands(a, w.shape[0], a.shape[1], 84))  # "T"

        return impl


# MKL's matrix product costs ~5 us of thread start-up on two threads at 2-4 rows, where one
# matrix-vector product per row costs ~0.8 us (64 x 256), and wins from 8 rows (16 x 64 x 256:
# 9.5 against 14.5 us; docs/performance.md). (With OpenBLAS the per-row product won up to 16 rows;
# the limit is one constant for both, since numba's cache freezes the globals a kernel reads.)
_GEMV_MAX_ROWS = 7


@njit(cache=True, nogil=True, inline="always")
def _rows_dot(a, b, out):
    """``out = a @ b`` for C-contiguous ``a (B, K)``, ``b (K, N)``: one matrix-vector product
    per row up to ``_GEMV_MAX_ROWS`` rows, else the registered BLAS's matrix product."""
    if a.shape[0] <= _GEMV_MAX_ROWS:
        for i in range(a.shape[0]):
            np.dot(a[i], b, out[i])
    else:
        _gemm(a, b, out)


@njit(cache=True, nogil=True, inline="always")
def _rows_dot_t(a, w, out):
    """``out = a @ w.T`` for C-contiguous ``a (B, K)``, ``w (N, K)``: as :func:`_rows_dot`, each
    row one matrix-vector product ``w @ a[i]``, else :func:`_gemm_nt`."""
    if a.shape[0] <= _GEMV_MAX_ROWS:
        for i in range(a.shape[0]):
            np.dot(w, a[i], out[i])
    else:
        _gemm_nt(a, w, out)


@njit(cache=True, nogil=True, inline="always")
def _scale_row(src, dst, rmask, b, scaled):
    """``dst = src * rmask[b]`` (recurrent dropout) when ``scaled``, else a copy of ``src``."""
    if scaled:
        rb = rmask[b]
        for k in range(src.shape[0]):
            dst[k] = src[k] * rb[k]
    else:
        for k in range(src.shape[0]):
            dst[k] = src[k]


# error_model="numpy": a division does not check for zero (to raise ZeroDivisionError), a branch
# that would keep LLVM from vectorising the gate loops; no divisor here can be zero.
@njit(cache=True, fastmath=True, error_model="numpy", nogil=True)
def lstm_forward(cfg, zx, W_hh, W_hr, w_ci, w_cf, w_co, ln_hh_w, ln_c_w, ln_c_b, ln_ih_w, bias, mask, rmask,
                 h, c, y, gates, c_all, tc_all, h_in_all, hr_all, zh_xhat, zh_rstd, cc_xhat, cc_rstd, zx_stats,
                 save):
    """Forward recurrence. ``zx (B, T, GH)`` holds each step's input term and the biases; with
    layer norm, the input products alone, which the kernel normalises step by step before
    ``ln_ih_w`` and ``bias`` (``zx_stats (B, T, 2)`` receives each row's mean and inverse
    standard deviation; ``zx`` is left as it is, and the backward recomputes the normalised
    values from it);
    ``W_hh (GH, P)`` and ``W_hr (P, H)`` are the recurrent and projection weights as torch
    stores them (the products read them transposed, through BLAS: no copy);
    ``h (B, P)`` and ``c (B, H)`` are updated in place to the final state; ``y (B, T, P)``
    receives the outputs.

    Each step runs over the whole batch in passes of simple loops, so that they vectorise: the
    pre-activations, the exp arguments of the gates, one _exp over all of them, the gate values
    and the new cell state, then a second _exp for tanh(c) (and for o when its peephole reads the
    new c), the output. The saves are copies at the end of the step."""
    B, T, GH = zx.shape
    P = W_hh.shape[1]
    H = c.shape[1]
    gi, gf, gg, go = cfg[GI], cfg[GF], cfg[GG], cfg[GO]
    # the configuration as locals: read once, so the compiler can hoist the branches
    k_forget, k_tanh_in, k_tanh_out, k_ln, k_proj, k_mask, k_rmask, k_peep_i, k_peep_f, k_peep_o = _flags(cfg)
    oi, of, og, oo = gi * H, gf * H, gg * H, go * H  # each gate's offset in a row of z
    # A step's exp arguments are (B, H) blocks of `a` (their exps the same blocks of `e`), packed:
    # in the first pass one block for each of i, f (exp(-z)), g (exp(2z)) and o that needs one;
    # o moves to the second pass when its peephole reads the new cell state, followed by the
    # block of tanh(c). Masked rows are computed too, their results dropped: no branch per row.
    s_i, s_f, s_g, s_o = -1, -1, -1, -1
    n1 = 0
    if gi >= 0:
        s_i = n1
        n1 += 1
    if k_forget == 0:
        s_f = n1
        n1 += 1
    if k_tanh_in:
        s_g = n1
        n1 += 1
    late_o = go >= 0 and k_peep_o
    if go >= 0 and not late_o:
        s_o = n1
        n1 += 1
    s_c = 1 if late_o else 0
    n2 = s_c + (1 if k_tanh_out else 0)
    dt = zx.dtype
    h_in = np.empty((B, P), dt)
    zh = np.empty((B, GH), dt)
    # exp arguments and values in separate buffers: LLVM does not vectorise a loop in place
    a_flat, e_flat = np.empty(4 * B * H, dt), np.empty(4 * B * H, dt)
    a, e = a_flat.reshape((4, B, H)), e_flat.reshape((4, B, H))
    gv = np.ones((B, 4, H), dt)  # gate values i, f, g, o; an absent gate stays 1
    cn = np.empty((B, H), dt)
    cc = np.empty((B, H), dt)  # the cell state after layer norm
    ca = cc if k_ln else cn  # what the output activation reads
    tc = np.empty((B, H), dt)
    hr = np.zeros((B, H), dt)
    h_proj = np.empty((B, P), dt)
    # Up to _GEMV_MAX_ROWS rows the step's product is one matrix-vector product per row, which
    # OpenBLAS runs ~1.4-1.6x faster on W_hh^T (64 or 128 units: 1.0 against 1.6 us, 3.1
    # against 4.3). Transposing W_hh costs 12, 91, 463 us at 64, 128, 256 units: worth it from
    # about P / 2 row-steps on (docs/performance.md). Above that the BLAS's matrix product reads
    # W_hh as it is.
    transposed = B <= _GEMV_MAX_ROWS and 2 * B * T >= P
    W_hhT = np.ascontiguousarray(W_hh.T) if transposed else np.empty((0, 0), dt)
    for t in range(T):
        for b in range(B):
            _scale_row(h[b], h_in[b], rmask, b, k_rmask)
        if transposed:  # (B, GH): the whole batch's recurrent product
            _rows_dot(h_in, W_hhT, zh)
        else:
            _rows_dot_t(h_in, W_hh, zh)
        for b in range(B):
            z = zh[b]
            if k_ln:
                r = _ln_rows(z, GH)
                if save:
                    zh_rstd[b, t] = r
                    zs = zh_xhat[b, t]
                    for j in range(GH):
                        zs[j] = z[j]
                # The input term's normalisation, here where its row is in cache: as separate
                # torch passes over (B*T, GH) it cost more than the whole recurrence. Its
                # normalised values are not written back: on this machine's memory a write of
                # the whole (B, T, GH) array costs more than recomputing them in the backward.
                zr = zx[b, t]
                mean, r = _ln_stats(zr, GH)
                mean, r = zr.dtype.type(mean), zr.dtype.type(r)  # as the backward reads them back
                if save:
                    zx_stats[b, t, 0] = mean
                    zx_stats[b, t, 1] = r
                for j in range(GH):
                    z[j] = (zr[j] - mean) * r * ln_ih_w[j] + bias[j] + z[j] * ln_hh_w[j]
            else:
                for j in range(GH):
                    z[j] += zx[b, t, j]
        # Row views and slices below, not zh[b, oi + j]: LLVM does not vectorise a loop over an
        # index that might be negative (numba wraps negative indices around).
        # first pass: a sigmoid takes exp(-z), the tanh of g exp(2z)
        for b in range(B):
            z, cp = zh[b], c[b]
            if s_i >= 0:
                arg, zi = a[s_i, b], z[oi:oi + H]
                if k_peep_i:
                    for j in range(H):
                        arg[j] = -(zi[j] + w_ci[j] * cp[j])
                else:
                    for j in range(H):
                        arg[j] = -zi[j]
            if s_f >= 0:
                arg, zf = a[s_f, b], z[of:of + H]
                if k_peep_f:
                    for j in range(H):
                        arg[j] = -(zf[j] + w_cf[j] * cp[j])
                else:
                    for j in range(H):
                        arg[j] = -zf[j]
            if s_g >= 0:
                arg, zg = a[s_g, b], z[og:og + H]
                for j in range(H):
                    arg[j] = _TWO * zg[j]
            if s_o >= 0:
                arg, zo = a[s_o, b], z[oo:oo + H]
                for j in range(H):
                    arg[j] = -zo[j]
        _exp(a_flat[:n1 * B * H], e_flat[:n1 * B * H])
        for b in range(B):
            i, f, g, o = gv[b, 0], gv[b, 1], gv[b, 2], gv[b, 3]
            if s_i >= 0:
                ei = e[s_i, b]
                for j in range(H):
                    i[j] = _sigmoid_of_exp(ei[j])
            if s_f >= 0:
                ef = e[s_f, b]
                for j in range(H):
                    f[j] = _sigmoid_of_exp(ef[j])
            elif k_forget == 2:
                for j in range(H):
                    f[j] = _ONE - i[j]
            if s_g >= 0:
                eg = e[s_g, b]
                for j in range(H):
                    g[j] = _tanh_of_exp(eg[j])
            else:
                zg = zh[b, og:og + H]
                for j in range(H):
                    g[j] = zg[j]
            if s_o >= 0:
                eo = e[s_o, b]
                for j in range(H):
                    o[j] = _sigmoid_of_exp(eo[j])
            cp, cnew = c[b], cn[b]
            for j in range(H):
                cnew[j] = f[j] * cp[j] + i[j] * g[j]
        if k_ln:
            for b in range(B):
                row, cnew = cc[b], cn[b]
                for j in range(H):
                    row[j] = cnew[j]
                r = _ln_rows(row, H)
                if save:
                    cc_rstd[b, t] = r
                    for j in range(H):
                        cc_xhat[b, t, j] = row[j]
                for j in range(H):
                    row[j] = row[j] * ln_c_w[j] + ln_c_b[j]
        # second pass: o with its peephole on the new cell state, and tanh(c)
        if n2 > 0:
            for b in range(B):
                if late_o:
                    arg, zo, cnew = a[0, b], zh[b, oo:oo + H], cn[b]
                    for j in range(H):
                        arg[j] = -(zo[j] + w_co[j] * cnew[j])
                if k_tanh_out:
                    arg, cb = a[s_c, b], ca[b]
                    for j in range(H):
                        arg[j] = _TWO * cb[j]
            _exp(a_flat[:n2 * B * H], e_flat[:n2 * B * H])
        for b in range(B):
            o, tcb, hrb = gv[b, 3], tc[b], hr[b]
            if late_o:
                eo = e[0, b]
                for j in range(H):
                    o[j] = _sigmoid_of_exp(eo[j])
            if k_tanh_out:
                ec = e[s_c, b]
                for j in range(H):
                    tcb[j] = _tanh_of_exp(ec[j])
            else:
                cb = ca[b]
                for j in range(H):
                    tcb[j] = cb[j]
            for j in range(H):
                hrb[j] = o[j] * tcb[j]
        # the saves, as contiguous row copies (a strided slice assignment cost ~20% of the step)
        if save:
            for b in range(B):
                gsrc, gdst = gv[b], gates[b, t]
                for k in range(4):
                    src, dst = gsrc[k], gdst[k]
                    for j in range(H):
                        dst[j] = src[j]
                src, dst = tc[b], tc_all[b, t]
                for j in range(H):
                    dst[j] = src[j]
        if k_proj:
            _rows_dot_t(hr, W_hr, h_proj)  # (B, P)
            h_new = h_proj
        else:
            h_new = hr
        for b in range(B):
            hb, cb, yb = h[b], c[b], y[b, t]
            if k_mask and not mask[b, t]:
                for k in range(P):
                    yb[k] = 0.0
                if save:
                    dst = c_all[b, t + 1]
                    for j in range(H):
                        dst[j] = cb[j]
                continue
            hnb, cnb = h_new[b], cn[b]
            for k in range(P):
                hb[k] = hnb[k]
            for k in range(P):
                yb[k] = hnb[k]
            for j in range(H):
                cb[j] = cnb[j]
            if save:
                src, dst = h_in[b], h_in_all[b, t]
                for k in range(P):
                    dst[k] = src[k]
                dst = c_all[b, t + 1]
                for j in range(H):
                    dst[j] = cnb[j]
                if k_proj:
                    src, dst = hr[b], hr_all[b, t]
                    for j in range(H):
                        dst[j] = src[j]


@njit(cache=True, fastmath=True, error_model="numpy", nogil=True)
def lstm_backward(cfg, dy, dh, dc, W_hh, W_hr, w_ci, w_cf, w_co, ln_hh_w, ln_c_w, ln_ih_w, mask, rmask,
                  gates, c_all, tc_all, zh_xhat, zh_rstd, cc_xhat, cc_rstd, zx, zx_stats,
                  dZ, dZh, dH_new, dpeep, dln_hh, dln_c_w, dln_c_b, dln_ih, dbias):
    """Backward sweep: fills ``dZ (B, T, GH)`` (and ``dZh`` with layer norm, ``dH_new`` with a
    projection), accumulates peephole and layer-norm gradients, and leaves the gradients wrt the
    initial state in ``dh``, ``dc``. With layer norm ``dZ`` ends as the gradient wrt the input
    products before their normalisation, and the bias gradient is accumulated in ``dbias``.

    As in the forward, each row's work is a sequence of simple loops over contiguous row views,
    with every branch on the configuration outside them, so that the compiler vectorises them
    (the first version, one loop with the branches inside and 4-D indexing, ran ~30 ns an
    element; docs/performance.md)."""
    B, T, P = dy.shape
    GH = W_hh.shape[0]
    H = dc.shape[1]
    gi, gf, gg, go = cfg[GI], cfg[GF], cfg[GG], cfg[GO]
    # the configuration as locals: read once, so the compiler can hoist the branches
    k_forget, k_tanh_in, k_tanh_out, k_ln, k_proj, k_mask, k_rmask, k_peep_i, k_peep_f, k_peep_o = _flags(cfg)
    oi, of, og, oo = gi * H, gf * H, gg * H, go * H
    dt = dy.dtype
    dhn = np.empty((B, P), dt)
    src = np.empty((B, GH), dt)
    dcc = np.empty(H, dt)
    dcn = np.empty(H, dt)
    tmp = np.empty(max(H, GH), dt)
    tmp2 = np.empty(GH, dt)
    dzo = np.zeros(H, dt)  # stays 0 without an output gate
    dh_in = np.empty((B, P), dt)
    dp_i, dp_f, dp_o = dpeep[0], dpeep[1], dpeep[2]
    for t in range(T - 1, -1, -1):
        for b in range(B):
            dhb, dyb, dnb = dh[b], dy[b, t], dhn[b]
            if k_mask and not mask[b, t]:
                for k in range(P):
                    dnb[k] = 0.0
            else:
                for k in range(P):
                    dnb[k] = dhb[k] + dyb[k]
            if k_proj:
                dsave = dH_new[b, t]
                for k in range(P):
                    dsave[k] = dnb[k]
        dhr = np.dot(dhn, W_hr) if k_proj else dhn  # (B, H)
        for b in range(B):
            dz, sb = dZ[b, t], src[b]
            if k_mask and not mask[b, t]:
                for j in range(GH):
                    dz[j] = 0.0
                    sb[j] = 0.0
                if k_ln:
                    dzh = dZh[b, t]
                    for j in range(GH):
                        dzh[j] = 0.0
                continue
            gb = gates[b, t]
            i, f, g, o = gb[0], gb[1], gb[2], gb[3]
            tc, dr = tc_all[b, t], dhr[b]
            cp, cn = c_all[b, t], c_all[b, t + 1]
            dcb = dc[b]
            # through h = o * act(c): the cell-state gradient and the output gate's
            if k_tanh_out:
                for j in range(H):
                    dcc[j] = dr[j] * o[j] * (_ONE - tc[j] * tc[j])
            else:
                for j in range(H):
                    dcc[j] = dr[j] * o[j]
            if go >= 0:
                for j in range(H):
                    dzo[j] = dr[j] * tc[j] * o[j] * (_ONE - o[j])
                dzs = dz[oo:oo + H]
                for j in range(H):
                    dzs[j] = dzo[j]
            if k_ln:  # one output per loop: with several, LLVM's overlap checks stop vectorisation
                ccx = cc_xhat[b, t]
                for j in range(H):
                    dln_c_b[j] += dcc[j]
                for j in range(H):
                    dln_c_w[j] += dcc[j] * ccx[j]
                for j in range(H):
                    tmp[j] = dcc[j] * ln_c_w[j]
                _ln_back(tmp, ccx, cc_rstd[b, t], dcc, H)
            # the total gradient wrt the new cell state
            if k_peep_o:
                for j in range(H):
                    dcn[j] = dcb[j] + dcc[j] + dzo[j] * w_co[j]
                for j in range(H):
                    dp_o[j] += dzo[j] * cn[j]
            else:
                for j in range(H):
                    dcn[j] = dcb[j] + dcc[j]
            # c = f * c_prev + i * g
            dzs = dz[og:og + H]
            if k_tanh_in:
                for j in range(H):
                    dzs[j] = dcn[j] * i[j] * (_ONE - g[j] * g[j])
            else:
                for j in range(H):
                    dzs[j] = dcn[j] * i[j]
            for j in range(H):
                dcb[j] = dcn[j] * f[j]  # the gradient wrt c_prev, before the peepholes
            if gi >= 0:
                dzs = dz[oi:oi + H]
                if k_forget == 2:  # coupled: f = 1 - i
                    for j in range(H):
                        dzs[j] = dcn[j] * (g[j] - cp[j]) * i[j] * (_ONE - i[j])
                else:
                    for j in range(H):
                        dzs[j] = dcn[j] * g[j] * i[j] * (_ONE - i[j])
                if k_peep_i:
                    for j in range(H):
                        dcb[j] += dzs[j] * w_ci[j]
                    for j in range(H):
                        dp_i[j] += dzs[j] * cp[j]
            if k_forget == 0:
                dzs = dz[of:of + H]
                for j in range(H):
                    dzs[j] = dcn[j] * cp[j] * f[j] * (_ONE - f[j])
                if k_peep_f:
                    for j in range(H):
                        dcb[j] += dzs[j] * w_cf[j]
                    for j in range(H):
                        dp_f[j] += dzs[j] * cp[j]
            if k_ln:
                zhx, dzh = zh_xhat[b, t], dZh[b, t]
                for j in range(GH):
                    dln_hh[j] += dz[j] * zhx[j]
                for j in range(GH):
                    tmp[j] = dz[j] * ln_hh_w[j]
                _ln_back(tmp, zhx, zh_rstd[b, t], dzh, GH)
                for j in range(GH):
                    sb[j] = dzh[j]
                # the input term: its scale, the bias, and back through its normalisation
                zr, mean, r = zx[b, t], zx_stats[b, t, 0], zx_stats[b, t, 1]
                zxx = tmp2
                for j in range(GH):
                    zxx[j] = (zr[j] - mean) * r
                for j in range(GH):
                    dln_ih[j] += dz[j] * zxx[j]
                for j in range(GH):
                    dbias[j] += dz[j]
                for j in range(GH):
                    tmp[j] = dz[j] * ln_ih_w[j]
                _ln_back(tmp, zxx, r, dz, GH)
            else:
                for j in range(GH):
                    sb[j] = dz[j]
        _rows_dot(src, W_hh, dh_in)  # (B, P): the whole batch's recurrent gradient
        for b in range(B):
            if k_mask and not mask[b, t]:
                continue  # a skipped step passes dh and dc through unchanged
            _scale_row(dh_in[b], dh[b], rmask, b, k_rmask)


@njit(cache=True, fastmath=True, error_model="numpy", nogil=True)
def gru_forward(reset_after, has_mask, has_rmask, zx, W_rzT, W_nT, b_hh, mask, rmask, h,
                y, r_all, z_all, n_all, hp_all, h_in_all, hn_all, save):
    """GRU forward recurrence; ``zx (B, T, 3H)`` includes ``bias_ih``; ``W_rzT (H, 2H)`` and
    ``W_nT (H, H)`` are the transposed recurrent weights; ``h`` is updated in place.
    ``hn_all`` saves ``W_hn h_in + b_hn`` (reset_after) or ``r * h_in`` (otherwise).

    As in lstm_forward, each step runs over the batch in passes that vectorise, with one _exp
    for the sigmoids of r and z and one for the tanh of n."""
    B, T, H3 = zx.shape
    H = H3 // 3
    dt = zx.dtype
    b_rz, b_n = b_hh[:2 * H], b_hh[2 * H:]
    h_in = np.empty((B, H), dt)
    hrz = np.empty((B, 2 * H), dt)
    rh = np.empty((B, H), dt)
    hn = np.empty((B, H), dt)
    u = np.empty((B, H), dt)  # W_hn h_in + b_hn (reset_after) or W_hn (r h_in) + b_hn
    n = np.empty((B, H), dt)
    # exp arguments and values in separate buffers: LLVM does not vectorise a loop in place
    a_rz, e_rz = np.empty((B, 2 * H), dt), np.empty((B, 2 * H), dt)
    a_n, e_n = np.empty((B, H), dt), np.empty((B, H), dt)
    a_rz_flat, e_rz_flat = a_rz.reshape(2 * B * H), e_rz.reshape(2 * B * H)
    a_n_flat, e_n_flat = a_n.reshape(B * H), e_n.reshape(B * H)
    for t in range(T):
        for b in range(B):
            for k in range(H):
                h_in[b, k] = h[b, k] * rmask[b, k] if has_rmask else h[b, k]
        _rows_dot(h_in, W_rzT, hrz)  # (B, 2H)
        for b in range(B):
            arg, zxb, hb = a_rz[b], zx[b, t], hrz[b]
            for j in range(2 * H):
                arg[j] = -(zxb[j] + hb[j] + b_rz[j])
        _exp(a_rz_flat, e_rz_flat)
        for b in range(B):
            er, ez, r, z = e_rz[b, :H], e_rz[b, H:], r_all[b, t], z_all[b, t]
            for j in range(H):
                r[j] = _sigmoid_of_exp(er[j])
            for j in range(H):
                z[j] = _sigmoid_of_exp(ez[j])
            rhb, hib = rh[b], h_in[b]
            for j in range(H):
                rhb[j] = r[j] * hib[j]
        _rows_dot(h_in if reset_after else rh, W_nT, hn)  # (B, H)
        for b in range(B):
            arg, zn, ub, hnb, r = a_n[b], zx[b, t, 2 * H:], u[b], hn[b], r_all[b, t]
            for j in range(H):
                ub[j] = hnb[j] + b_n[j]
            if reset_after:
                for j in range(H):
                    arg[j] = _TWO * (zn[j] + r[j] * ub[j])
            else:
                for j in range(H):
                    arg[j] = _TWO * (zn[j] + ub[j])
        _exp(a_n_flat, e_n_flat)
        for b in range(B):
            if has_mask and not mask[b, t]:
                for k in range(H):
                    y[b, t, k] = 0.0
                continue
            en, nb, yb, hb, z = e_n[b], n[b], y[b, t], h[b], z_all[b, t]
            for j in range(H):
                nb[j] = _tanh_of_exp(en[j])
            if save:
                n_all[b, t] = nb
                hp_all[b, t] = hb
                h_in_all[b, t] = h_in[b]
                hn_all[b, t] = u[b] if reset_after else rh[b]
            for j in range(H):
                yb[j] = nb[j] + z[j] * (hb[j] - nb[j])
                hb[j] = yb[j]


@njit(cache=True, fastmath=True, error_model="numpy", nogil=True)
def gru_backward(reset_after, has_mask, has_rmask, dy, dh, W_rz, W_n, mask, rmask,
                 r_all, z_all, n_all, hp_all, h_in_all, hn_all, dZx, dZh_rz, dZh_n):
    """GRU backward sweep: fills the per-step gradients wrt the input pre-activations ``dZx``,
    the recurrent ``r, z`` pre-activations ``dZh_rz`` and the ``n`` block ``dZh_n``; leaves the
    gradient wrt the initial state in ``dh``. ``W_rz (2H, H)``, ``W_n (H, H)``.

    As the LSTM's: simple loops over contiguous row views, the branches outside them."""
    B, T, H = dy.shape
    dt = dy.dtype
    src_rz = np.empty((B, 2 * H), dt)
    src_n = np.empty((B, H), dt)
    direct = np.empty((B, H), dt)
    drh_buf = np.empty((B, H), dt)
    acc = np.empty((B, H), dt)
    acc_n = np.empty((B, H), dt)
    dhn = np.empty(H, dt)
    for t in range(T - 1, -1, -1):
        # through h = (1 - z) n + z h_prev: the z and n blocks
        for b in range(B):
            dzx, snb = dZx[b, t], src_n[b]
            if has_mask and not mask[b, t]:
                for j in range(H, 3 * H):
                    dzx[j] = 0.0
                for j in range(H):
                    snb[j] = 0.0
                continue
            dhb, dyb, dirb = dh[b], dy[b, t], direct[b]
            zb, nb, hpb = z_all[b, t], n_all[b, t], hp_all[b, t]
            dxz, dxn = dzx[H:2 * H], dzx[2 * H:3 * H]
            for j in range(H):
                dhn[j] = dhb[j] + dyb[j]
            for j in range(H):
                dxz[j] = dhn[j] * (hpb[j] - nb[j]) * zb[j] * (_ONE - zb[j])
            for j in range(H):
                dxn[j] = dhn[j] * (_ONE - zb[j]) * (_ONE - nb[j] * nb[j])
            if reset_after:
                rb = r_all[b, t]
                for j in range(H):
                    snb[j] = dxn[j] * rb[j]
            else:
                for j in range(H):
                    snb[j] = dxn[j]
            for j in range(H):
                dirb[j] = dhn[j] * zb[j]
        # reset_after=False: the reset gate's gradient needs W_hn^T dz_n first
        if reset_after:
            drh = src_n
        else:
            _rows_dot(src_n, W_n, drh_buf)
            drh = drh_buf
        # the r block, and the recurrent products' sources
        for b in range(B):
            dzx, srz, snb = dZx[b, t], src_rz[b], src_n[b]
            if has_mask and not mask[b, t]:
                for j in range(H):
                    dzx[j] = 0.0
                for j in range(2 * H):
                    srz[j] = 0.0
            else:
                rb, dxr = r_all[b, t], dzx[0:H]
                if reset_after:
                    dxn, hnb = dzx[2 * H:3 * H], hn_all[b, t]
                    for j in range(H):
                        dxr[j] = dxn[j] * hnb[j] * rb[j] * (_ONE - rb[j])
                else:
                    drb, hib = drh[b], h_in_all[b, t]
                    for j in range(H):
                        dxr[j] = drb[j] * hib[j] * rb[j] * (_ONE - rb[j])
                for j in range(2 * H):
                    srz[j] = dzx[j]
            dst = dZh_rz[b, t]
            for j in range(2 * H):
                dst[j] = srz[j]
            dst = dZh_n[b, t]
            for j in range(H):
                dst[j] = snb[j]
        _rows_dot(src_rz, W_rz, acc)  # (B, H)
        if reset_after:
            _rows_dot(src_n, W_n, acc_n)
        for b in range(B):
            if has_mask and not mask[b, t]:
                continue  # a skipped step passes dh through unchanged
            accb, dirb, dhb = acc[b], direct[b], dh[b]
            if reset_after:
                an = acc_n[b]
                for k in range(H):
                    accb[k] += an[k]
            else:
                drb, rb = drh[b], r_all[b, t]
                for k in range(H):
                    accb[k] += drb[k] * rb[k]
            if has_rmask:
                rm = rmask[b]
                for k in range(H):
                    dhb[k] = dirb[k] + accb[k] * rm[k]
            else:
                for k in range(H):
                    dhb[k] = dirb[k] + accb[k]


# ---------------------------------------------------------------------------------------------
# Elman RNN
#
# fastmath without "nnan": relu must pass a NaN on as torch's does (with it the compiler may drop
# the comparison's NaN case; stream.rnn_sequence found a NaN input coming out as 0)
_RNN_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
_ZERO = _F32(0.0)


@njit(cache=True, fastmath=_RNN_FASTMATH, error_model="numpy", nogil=True)
def rnn_forward(relu, has_mask, has_rmask, zx, W_hh, mask, rmask, h, y, h_all, h_in_all, save):
    """Elman RNN forward recurrence, ``h_t = act(zx_t + W_hh h_in)``, ``act`` tanh or relu:
    ``zx (B, T, H)`` holds each step's input term and both biases; ``W_hh (H, H)`` is the
    recurrent weight as torch stores it; ``h (B, H)`` is updated in place to the final state;
    ``y (B, T, H)`` receives the outputs (0 at a masked step, whose state passes unchanged).
    Saved: each step's new h (``h_all``, what the activation's derivative reads) and the
    product's input ``h_in`` (``h_in_all``, for the weight gradient; rows the caller zeroed stay
    so at masked steps). As lstm_forward: passes over the whole batch, one _exp for the tanh."""
    B, T, H = zx.shape
    dt = zx.dtype
    h_in = np.empty((B, H), dt)
    zh = np.empty((B, H), dt)
    hv = np.empty((B, H), dt)
    a_flat, e_flat = np.empty(B * H, dt), np.empty(B * H, dt)
    a, e = a_flat.reshape((B, H)), e_flat.reshape((B, H))
    # as lstm_forward: up to _GEMV_MAX_ROWS rows a matrix-vector product per row on W_hh^T, made
    # once where enough row-steps pay for the copy
    transposed = B <= _GEMV_MAX_ROWS and 2 * B * T >= H
    W_hhT = np.ascontiguousarray(W_hh.T) if transposed else np.empty((0, 0), dt)
    for t in range(T):
        for b in range(B):
            _scale_row(h[b], h_in[b], rmask, b, has_rmask)
        if transposed:
            _rows_dot(h_in, W_hhT, zh)
        else:
            _rows_dot_t(h_in, W_hh, zh)
        if relu:
            for b in range(B):
                z, zr, out = zh[b], zx[b, t], hv[b]
                for j in range(H):
                    v = z[j] + zr[j]
                    out[j] = _ZERO if v < _ZERO else v  # NaN < 0 is false: NaN stays NaN
        else:
            for b in range(B):
                z, zr, arg = zh[b], zx[b, t], a[b]
                for j in range(H):
                    arg[j] = _TWO * (z[j] + zr[j])
            _exp(a_flat, e_flat)
            for b in range(B):
                eb, out = e[b], hv[b]
                for j in range(H):
                    out[j] = _tanh_of_exp(eb[j])
        for b in range(B):
            yb = y[b, t]
            if has_mask and not mask[b, t]:
                for j in range(H):
                    yb[j] = 0.0
                continue
            hb, out = h[b], hv[b]
            for j in range(H):
                hb[j] = out[j]
            for j in range(H):
                yb[j] = out[j]
            if save:
                dst = h_all[b, t]
                for j in range(H):
                    dst[j] = out[j]
                src, dst = h_in[b], h_in_all[b, t]
                for j in range(H):
                    dst[j] = src[j]


@njit(cache=True, fastmath=_RNN_FASTMATH, error_model="numpy", nogil=True)
def rnn_backward(relu, has_mask, has_rmask, dy, dh, W_hh, mask, rmask, h_all, dZ):
    """Elman RNN backward sweep: fills ``dZ (B, T, H)``, the gradient wrt each step's
    pre-activation (0 at masked steps), and leaves the gradient wrt the initial state in ``dh``
    (a masked step passes it through unchanged). ``W_hh (H, H)`` as torch stores it."""
    B, T, H = dy.shape
    dt = dy.dtype
    src = np.empty((B, H), dt)
    dh_in = np.empty((B, H), dt)
    for t in range(T - 1, -1, -1):
        for b in range(B):
            sb, dz = src[b], dZ[b, t]
            if has_mask and not mask[b, t]:
                for j in range(H):
                    sb[j] = 0.0
                for j in range(H):
                    dz[j] = 0.0
                continue
            dhb, dyb, hb = dh[b], dy[b, t], h_all[b, t]
            if relu:  # times 0 or 1, as torch's backward: a NaN gradient stays NaN
                for j in range(H):
                    sb[j] = (dhb[j] + dyb[j]) * (_ONE if hb[j] > _ZERO else _ZERO)
            else:
                for j in range(H):
                    sb[j] = (dhb[j] + dyb[j]) * (_ONE - hb[j] * hb[j])
            for j in range(H):
                dz[j] = sb[j]
        _rows_dot(src, W_hh, dh_in)  # (B, H): the whole batch's recurrent gradient
        for b in range(B):
            if has_mask and not mask[b, t]:
                continue
            _scale_row(dh_in[b], dh[b], rmask, b, has_rmask)
