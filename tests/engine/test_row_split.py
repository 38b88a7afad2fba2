"""The compiled kernels run on slices of the batch in parallel threads (``jit.run_rows``): the
same function as one call over the whole batch, and the rule that decides when."""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit.cells import GRUCell, LSTMCell, RNNCell
from lstmkit.engine import fused, jit, run
from tests.helpers import max_diff, randomize, weighted_sum

pytestmark = pytest.mark.skipif(not jit.AVAILABLE, reason="numba is a dependency; test_paths fails without it")

B, T, I, H = 20, 5, 4, 8  # 10 or 7 rows a slice: the slices' step products are matrix products

CELLS = {
    "lstm-vanilla": lambda: LSTMCell(I, H),
    "lstm-layernorm": lambda: LSTMCell(I, H, variant="layernorm"),
    "lstm-peephole-proj": lambda: LSTMCell(I, H, variant="peephole", proj_size=5),
    "lstm-cifg": lambda: LSTMCell(I, H, variant="cifg"),
    "gru": lambda: GRUCell(I, H),
    "gru-reset-before": lambda: GRUCell(I, H, reset_after=False),
    "rnn-tanh": lambda: RNNCell(I, H),
    "rnn-relu": lambda: RNNCell(I, H, nonlinearity="relu"),
}


def _outputs_and_grads(cell, x, state, mask, rmask):
    y, final = run(cell, x, state, mask, rmask, engine="fused")
    grads = torch.autograd.grad(weighted_sum([y, *final]), [x, *state, *cell.parameters()])
    return [y, *final], grads


@pytest.fixture(params=["openmp", "pool"])
def runner(request, monkeypatch):
    """Which threads run the slices: torch's OpenMP threads (where its libgomp is found, as here
    on Linux), or the thread pool every other platform uses."""
    if request.param == "openmp":
        if not sys.platform.startswith("linux"):
            pytest.skip("torch links GNU OpenMP on Linux only")
        assert jit._openmp() is not None, "torch's libgomp was not found: the split would run on the pool"
    else:
        monkeypatch.setattr(jit, "_openmp", lambda: None)
    return request.param


@pytest.mark.parametrize("chunks", [2, 3])
@pytest.mark.parametrize("name", list(CELLS))
def test_split_batch_equals_one_call(name, chunks, runner, monkeypatch):
    monkeypatch.setattr(fused, "JIT_ENABLED", True)
    cell = randomize(CELLS[name]().double(), seed=11)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(B, T, I, generator=gen, dtype=torch.double, requires_grad=True)
    state = tuple(torch.randn(s.shape, generator=gen, dtype=torch.double).requires_grad_()
                  for s in cell.initial_state(B))
    mask = torch.rand(B, T, generator=gen) > 0.25
    rmask = (torch.rand(B, state[0].shape[1], generator=gen, dtype=torch.double) > 0.3).double() / 0.7

    monkeypatch.setattr(fused, "row_chunks", lambda *args, **kwargs: 1)
    one_out, one_grads = _outputs_and_grads(cell, x, state, mask, rmask)

    threads = set()
    single = jit._single_threaded

    def spy(kernel, args):
        threads.add((threading.get_ident(), threading.current_thread().name))
        return single(kernel, args)

    monkeypatch.setattr(jit, "_single_threaded", spy)
    monkeypatch.setattr(fused, "row_chunks", lambda *args, **kwargs: chunks)
    out, grads = _outputs_and_grads(cell, x, state, mask, rmask)
    assert len(threads) >= 2, threads  # this thread and others
    on_pool = any(name.startswith("lstmkit-rows") for _, name in threads)
    assert on_pool == (runner == "pool"), threads
    assert max_diff(out, one_out) < 1e-12
    assert max_diff(grads, one_grads) < 1e-12


def test_row_chunks_rule(runner):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert fused.row_chunks(False, 16, 10, 16) == 1  # too little work to pay for a split call
        if runner == "openmp":
            assert fused.row_chunks(False, 16, 20, 128) == 2
            assert fused.row_chunks(False, 16, 100, 256) == 2
            assert fused.row_chunks(False, 15, 100, 256) == 1  # a second slice would have fewer than 8 rows
            assert fused.row_chunks(True, 8, 100, 128) == 2  # up to 128 units, from 4 rows a slice
            assert fused.row_chunks(False, 7, 100, 128) == 1
            assert fused.row_chunks(False, 8, 100, 128, elman=True) == 2
            assert fused.row_chunks(False, 16, 100, 512, elman=True) == 2
        else:  # the pool: only where each slice has enough work to outweigh torch's spinning threads
            assert fused.row_chunks(False, 64, 100, 256) == 2
            assert fused.row_chunks(False, 63, 100, 256) == 1  # a second slice would have fewer than 32 rows
            assert fused.row_chunks(False, 64, 100, 255) == 1
            assert fused.row_chunks(True, 64, 100, 128) == 2  # layer norm: more work per row, split earlier
            assert fused.row_chunks(True, 64, 100, 127) == 1
            assert fused.row_chunks(False, 1024, 100, 512, elman=True) == 1  # the Elman RNN: never
        assert fused.row_chunks(False, 1024, 100, 512) == 2  # never more slices than torch's threads
        torch.set_num_threads(4)
        assert fused.row_chunks(False, 96, 100, 512) == (4 if runner == "openmp" else 3)
        torch.set_num_threads(1)
        assert fused.row_chunks(False, 1024, 100, 512) == 1
    finally:
        torch.set_num_threads(before)


def _row_sums(x, acc, out):
    """A stand-in kernel: each row's sum into ``out``, the column sums added into ``acc``."""
    out[:] = x.sum(1)
    acc += x.sum(0)


def test_run_rows_slices_rows_and_adds_up_accumulators(runner):
    x = np.arange(30.0).reshape(10, 3)
    acc, out = np.ones(3), np.zeros(10)
    jit.run_rows(_row_sums, (x, acc, out), 10, batched=(0, 2), accumulated=(1,), chunks=3)
    np.testing.assert_array_equal(out, x.sum(1))
    np.testing.assert_array_equal(acc, 1 + x.sum(0))


def test_run_rows_raises_a_slice_error_and_refuses_a_mismatched_argument(runner):
    def fails_on_late_rows(x):
        if x[0, 0] >= 15:
            raise RuntimeError("slice failed")

    x = np.arange(30.0).reshape(10, 3)
    with pytest.raises(RuntimeError, match="slice failed"):
        jit.run_rows(fails_on_late_rows, (x,), 10, batched=(0,), chunks=2)
    with pytest.raises(ValueError, match="argument 0 has 9 rows, not the batch's 10"):
        jit.run_rows(fails_on_late_rows, (x[:9],), 10, batched=(0,), chunks=2)


def split_example():
    """A split call of the stand-in kernel on a 4-row batch: ``(row sums, column sums)``."""
    x = np.arange(12.0).reshape(4, 3)
    acc, out = np.zeros(3), np.zeros(4)
    jit.run_rows(_row_sums, (x, acc, out), 4, batched=(0, 2), accumulated=(1,), chunks=2)
    return out.tolist(), acc.tolist()


EXAMPLE = ([3.0, 12.0, 21.0, 30.0], [18.0, 22.0, 26.0])


def _split_in_child(queue):
    queue.put(split_example())


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform")
@pytest.mark.parametrize("split_before_fork", [True, False])
def test_a_forked_child_gets_a_pool_of_its_own(split_before_fork, monkeypatch):
    # the parent's pool threads, and its OpenMP threads, do not exist in a child: a queue or a
    # parallel region there would wait forever, whether or not the parent split before the fork
    if split_before_fork:
        assert split_example() == EXAMPLE
    else:
        monkeypatch.setattr(jit, "_omp", None)  # not looked up yet, but torch's threads made
        torch.mm(torch.ones(256, 256), torch.ones(256, 256))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_split_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the split call hung in a forked child")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == EXAMPLE


def _interrupting_kernel(x, out):
    """A stand-in kernel whose second slice, on another thread, sends this process SIGINT while
    the first slice (this thread) is still at work."""
    if x[0, 0] != 0:
        os.kill(os.getpid(), signal.SIGINT)
    else:
        time.sleep(0.2)
    out[:] = x.sum(1)


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="POSIX signals")
def test_an_interrupt_during_a_split_call_is_raised_not_lost(runner):
    # Python runs signal handlers in the main thread, here inside the split call: its
    # KeyboardInterrupt must reach the caller, never leave a slice undone behind a normal return
    x = np.arange(12.0).reshape(4, 3)
    for _ in range(3):
        out = np.full(4, np.nan)
        with pytest.raises(KeyboardInterrupt):
            jit.run_rows(_interrupting_kernel, (x, out), 4, batched=(0, 1), chunks=2)


def test_a_slice_that_never_ran_is_an_error(monkeypatch):
    class OneThreadOfTwo:  # an OpenMP runtime that reports two threads but runs the region on one
        def GOMP_parallel(self, body, data, threads, flags):
            body(data)

        def omp_get_thread_num(self):
            return 0

        def omp_get_num_threads(self):
            return 2

    monkeypatch.setattr(jit, "_openmp", OneThreadOfTwo)
    x = np.arange(12.0).reshape(4, 3)
    with pytest.raises(RuntimeError, match="a slice of the batch did not run"):
        jit.run_rows(_row_sums, (x, np.zeros(3), np.zeros(4)), 4, batched=(0, 2), accumulated=(1,), chunks=2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torch links GNU OpenMP on Linux only")
def test_the_slices_run_on_torch_own_openmp_threads():
    # another package's libgomp (scikit-learn maps one) would start threads of its own, which
    # contend with torch's spinning ones: the region must use torch's, already running
    assert jit._openmp() is not None
    torch.mm(torch.ones(256, 256), torch.ones(256, 256))  # torch's OpenMP threads exist now
    before = set(os.listdir("/proc/self/task"))
    x = np.arange(30.0).reshape(10, 3)
    jit.run_rows(_row_sums, (x, np.zeros(3), np.zeros(10)), 10, batched=(0, 2), accumulated=(1,),
                 chunks=min(2, torch.get_num_threads()))
    assert set(os.listdir("/proc/self/task")) <= before


@pytest.mark.parametrize("pool_made_before", [False, True])
def test_a_split_call_at_interpreter_exit_runs_in_the_calling_thread(pool_made_before):
    # atexit hooks and finalizers run after the thread pools refuse new work
    root = str(Path(__file__).resolve().parents[2])
    script = textwrap.dedent(f"""
        import atexit
        import sys
        sys.path.insert(0, {root!r})
        from tests.engine.test_row_split import split_example

        if {pool_made_before}:
            split_example()
        atexit.register(lambda: print("at exit", split_example()))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"at exit {EXAMPLE}" in done.stdout
