"""The three paths compute one function: fused and native against the reference loop, gradcheck."""

import pytest
import torch

from lstmkit.cells import VARIANTS, GRUCell, LSTMCell, RNNCell
from lstmkit.engine import fused, run, select_engine
from tests.helpers import max_diff, randomize, weighted_sum

B, T, I, H = 3, 6, 4, 5
RAGGED_MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 1, 1, 0, 1, 1]], dtype=torch.bool)


def cells():
    for name in VARIANTS:
        yield f"lstm-{name}", lambda name=name: LSTMCell(I, H, variant=name)
        yield f"lstm-{name}-proj", lambda name=name: LSTMCell(I, H, variant=name, proj_size=3)
    yield "gru", lambda: GRUCell(I, H)
    yield "gru-reset-before", lambda: GRUCell(I, H, reset_after=False)
    yield "rnn-tanh", lambda: RNNCell(I, H)
    yield "rnn-relu", lambda: RNNCell(I, H, nonlinearity="relu")


CELLS = dict(cells())


def outputs_and_grads(cell, engine, x, state, mask=None, rmask=None):
    y, final = run(cell, x, state, mask, rmask, engine=engine)
    loss = weighted_sum([y, *final])
    grads = torch.autograd.grad(loss, [x, *state, *cell.parameters()])
    return [y, *final], grads


def inputs(cell, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, I, generator=gen, dtype=torch.double, requires_grad=True)
    state = tuple(torch.randn(s.shape, generator=gen, dtype=torch.double).requires_grad_()
                  for s in cell.initial_state(B))
    return x, state


@pytest.fixture(params=["torch-sweep", "compiled-sweep", "compiled-split"])
def sweep(request, monkeypatch):
    """Run the fused path with each of its two recurrences: torch ops, or the numba kernels; the
    kernels also with the batch split over threads, every row a slice of its own (at these sizes
    ``row_chunks`` would not split)."""
    if request.param.startswith("compiled"):
        if not fused.jit.AVAILABLE:
            pytest.fail("numba is a dependency of lstmkit but could not be imported")
        monkeypatch.setattr(fused, "JIT_ENABLED", True)
        if request.param == "compiled-split":
            monkeypatch.setattr(fused, "row_chunks", lambda layer_norm, rows, *args, **kwargs: rows)
    else:
        monkeypatch.setattr(fused, "JIT_ENABLED", False)
    return request.param


@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked+recurrent-dropout"])
@pytest.mark.parametrize("name", list(CELLS))
def test_fused_equals_reference(name, masked, sweep):
    cell = randomize(CELLS[name]().double(), seed=len(name))
    x, state = inputs(cell, seed=3)
    mask = RAGGED_MASK if masked else None
    rmask = (torch.rand(B, state[0].shape[1], dtype=torch.double) > 0.3).double() / 0.7 if masked else None
    ref_out, ref_grads = outputs_and_grads(cell, "reference", x, state, mask, rmask)
    out, grads = outputs_and_grads(cell, "fused", x, state, mask, rmask)
    assert max_diff(out, ref_out) < 1e-12
    assert max_diff(grads, ref_grads) < 1e-12


@pytest.mark.parametrize("name", list(CELLS))
def test_gradcheck_fused(name, sweep):
    check_gradients(name, "fused")


@pytest.mark.parametrize("name", list(CELLS))
def test_gradcheck_reference(name):
    check_gradients(name, "reference")


def check_gradients(name, engine):
    cell = randomize(CELLS[name]().double(), seed=7)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, I, generator=gen, dtype=torch.double, requires_grad=True)
    state = tuple(torch.randn(s.shape, generator=gen, dtype=torch.double).requires_grad_()
                  for s in cell.initial_state(2))
    params = list(cell.parameters())
    names = [n for n, _ in cell.named_parameters()]
    mask = torch.tensor([[1, 0, 1], [1, 1, 0]], dtype=torch.bool)

    # gradcheck perturbs the inputs it is given; route parameters through a functional call.
    def functional(x, *rest):
        st, ps = rest[: len(state)], rest[len(state):]
        y, final = torch.func.functional_call(
            _Runner(cell, engine, mask), dict(zip([f"cell.{n}" for n in names], ps)), (x, tuple(st)))
        return (y, *final)

    assert torch.autograd.gradcheck(functional, (x, *state, *[p.detach().requires_grad_() for p in params]),
                                    eps=1e-6, atol=1e-7)


class _Runner(torch.nn.Module):
    def __init__(self, cell, engine, mask):
        super().__init__()
        self.cell, self.engine, self.mask = cell, engine, mask

    def forward(self, x, state):
        return run(self.cell, x, state, self.mask, engine=self.engine)


NATIVE = ["lstm-vanilla", "lstm-vanilla-proj", "lstm-np", "gru", "rnn-tanh", "rnn-relu"]


@pytest.mark.parametrize("right_padded", [False, True])
@pytest.mark.parametrize("name", NATIVE)
def test_native_equals_reference(name, right_padded):
    cell = randomize(CELLS[name]().double(), seed=11)
    x, state = inputs(cell, seed=4)
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool) if right_padded else None
    ref_out, ref_grads = outputs_and_grads(cell, "reference", x, state, mask)
    out, grads = outputs_and_grads(cell, "native", x, state, mask)
    assert max_diff(out, ref_out) < 1e-12
    assert max_diff(grads, ref_grads) < 1e-12


def test_auto_picks_native_only_where_it_computes_the_same_function():
    x = torch.zeros(2, 3, I)
    assert select_engine(LSTMCell(I, H), "auto", torch.zeros(8, 3, I)) == "native"
    # one or two sequences: the compiled sweep is faster than oneDNN (docs/performance.md)
    long = torch.zeros(2, 60, I)
    assert select_engine(LSTMCell(I, H), "auto", long) == ("fused" if fused.JIT_ENABLED else "native")
    assert select_engine(LSTMCell(I, H), "auto", x) == "native"  # 3 steps: the fused set-up costs more
    assert select_engine(LSTMCell(I, H, variant="peephole"), "auto", x) == "fused"
    gaps = torch.tensor([[1, 1, 1], [0, 1, 1]], dtype=torch.bool)
    assert select_engine(LSTMCell(I, H), "auto", x, mask=gaps) == "fused"
    assert select_engine(LSTMCell(I, H), "auto", x, recurrent_mask=torch.ones(2, H)) == "fused"
    assert select_engine(GRUCell(I, H, reset_after=False), "auto", x) == "fused"
    assert select_engine(GRUCell(I, H), "auto", x) == ("fused" if fused.JIT_ENABLED else "native")
    # above the compiled sweep's limits torch's GRU loop beats the torch sweep
    big = torch.zeros(10**5, 2, I)
    assert not fused.use_jit(None, big.shape[0], 3 * H, big)
    assert select_engine(GRUCell(I, H), "auto", big) == "native"
    assert select_engine(GRUCell(I, H, reset_after=False), "auto", big) == "fused"  # torch has no such GRU
    assert select_engine(LSTMCell(I, H, proj_size=2), "auto", x) == "fused"  # no oneDNN kernel on the CPU


@pytest.fixture
def threads():
    """Set torch's thread count for one test (the compiled sweep's limits depend on it)."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_auto_gru_between_the_training_and_inference_limits(threads):
    # on one thread, a GRU that needs no gradient runs like inference
    threads(1)
    mid = torch.zeros(128, 2, I)
    wide = GRUCell(I, 256)
    inference_fits = fused.use_jit(None, 128, 3 * 256, mid, training=False)
    assert not fused.use_jit(None, 128, 3 * 256, mid) and inference_fits == (fused.JIT_ENABLED and fused._MKL)
    assert select_engine(wide, "auto", mid) == "native"  # trainable weights, autograd on
    wide.requires_grad_(False)
    assert select_engine(wide, "auto", mid) == ("fused" if inference_fits else "native")
    assert select_engine(wide, "auto", mid.requires_grad_()) == "native"
    # on two, the kernels split the batch, and beat torch's GRU loop in training too
    threads(2)
    wide.requires_grad_(True)
    split = fused.JIT_ENABLED and fused._MKL
    assert fused.use_jit(None, 128, 3 * 256, mid) == split
    assert select_engine(wide, "auto", mid) == ("fused" if split else "native")
    assert select_engine(GRUCell(I, 512), "auto", torch.zeros(15, 2, I)) == "native"  # above the limits, no split


def test_auto_lstm_trains_on_the_compiled_sweep_where_onednn_faults_its_workspace_in(threads, monkeypatch):
    # from batch 32, 128-256 units and B*T*H = 3 * 2^18 oneDNN's saved activations outgrow glibc's
    # largest mmap threshold, and come back page-faulted every train step (docs/performance.md)
    import lstmkit.engine as engine

    threads(2)
    cell, x = LSTMCell(64, 256), torch.zeros(64, 100, 64)
    compiled = fused.use_jit(cell.variant, 64, 4 * 256, x)
    assert compiled == fused.JIT_ENABLED
    assert select_engine(cell, "auto", x) == ("fused" if compiled else "native")
    assert select_engine(LSTMCell(64, 128), "auto", x) == ("fused" if compiled else "native")
    with torch.no_grad():
        assert select_engine(cell, "auto", x) == "native"  # no graph: oneDNN saves nothing
    for other in (torch.zeros(16, 100, 64), torch.zeros(64, 20, 64), x.double()):
        assert select_engine(cell, "auto", other) == "native"  # batch 16, too little work, float64
    assert select_engine(LSTMCell(64, 512), "auto", x) == "native"  # 512 units: oneDNN wins anyway
    monkeypatch.setattr(engine, "retaining_freed_memory", lambda: True)
    assert select_engine(cell, "auto", x) == "native"  # memory kept: the two within 0.97x-1.04x
    monkeypatch.undo()
    cell.requires_grad_(False)
    assert select_engine(cell, "auto", x) == "native"  # nothing to train: no graph either
    assert select_engine(cell, "auto", x.requires_grad_()) == ("fused" if compiled else "native")


def test_native_refuses_what_it_cannot_compute():
    x = torch.zeros(2, 3, I)
    with pytest.raises(ValueError, match=r"engine='native' cannot run this layer: variant 'cifg' is not the vanilla"):
        select_engine(LSTMCell(I, H, variant="cifg"), "native", x)
    with pytest.raises(ValueError, match=r"reset_after=True"):
        select_engine(GRUCell(I, H, reset_after=False), "native", x)
    with pytest.raises(ValueError, match=r"the mask is not right-padding"):
        select_engine(LSTMCell(I, H), "native", x, mask=torch.tensor([[0, 1, 1], [1, 1, 1]], dtype=torch.bool))
    with pytest.raises(ValueError, match=r"unknown `engine` 'fast'"):
        select_engine(LSTMCell(I, H), "fast", x)


def test_inference_without_grad_matches_training_forward():
    cell = randomize(LSTMCell(I, H, variant="layernorm").double())
    x, state = inputs(cell, seed=9)
    y, _ = run(cell, x, state, engine="fused")
    with torch.no_grad():
        y2, _ = run(cell, x, state, engine="fused")
    assert torch.equal(y.detach(), y2)


def test_compiled_sweep_is_chosen_for_small_problems_only():
    x = torch.zeros(1, 5, I)
    assert fused.use_jit(LSTMCell(I, H).variant, 1, 4 * H, x) == fused.JIT_ENABLED
    assert not fused.use_jit(LSTMCell(I, H).variant, 10**6, 4 * H, x)
    assert not fused.use_jit(LSTMCell(I, H, variant="fgr").variant, 1, 4 * H, x)
    # the Elman RNN's compiled sweep: at every size with torch's MKL
    assert fused.use_jit(None, 10**6, H, x, elman=True) == (fused.JIT_ENABLED and fused._MKL)
    assert fused.use_jit(None, 1, H, x, elman=True) == fused.JIT_ENABLED


def test_single_step_runs_the_fused_cell_op_or_the_cell_step():
    x = torch.zeros(2, 1, I)
    assert select_engine(LSTMCell(I, H), "auto", x) == "native"
    assert select_engine(GRUCell(I, H), "auto", x) == "native"
    assert select_engine(LSTMCell(I, H, variant="peephole"), "auto", x) == "reference"
    assert select_engine(LSTMCell(I, H, proj_size=2), "auto", x) == "reference"


@pytest.mark.parametrize("name", ["lstm-vanilla", "gru", "rnn-tanh", "rnn-relu"])
def test_single_step_cell_op_equals_reference(name):
    cell = randomize(CELLS[name]().double(), seed=3)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(B, 1, I, generator=gen, dtype=torch.double, requires_grad=True)
    state = tuple(torch.randn(s.shape, generator=gen, dtype=torch.double).requires_grad_()
                  for s in cell.initial_state(B))
    ref_out, ref_grads = outputs_and_grads(cell, "reference", x, state)
    out, grads = outputs_and_grads(cell, "native", x, state)
    assert max_diff(out, ref_out) < 1e-12 and max_diff(grads, ref_grads) < 1e-12


@pytest.mark.parametrize("name", ["lstm-vanilla", "lstm-peephole", "gru"])
def test_bf16_autocast_runs_a_path_that_supports_it(name):
    cell = CELLS[name]()
    x = torch.randn(2, 5, I, requires_grad=True)
    state = cell.initial_state(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        path = select_engine(cell, "auto", x)
        y, _ = run(cell, x, state, engine=path)
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert path == "fused"
    y.float().sum().backward()
    assert torch.isfinite(x.grad).all()
    with torch.no_grad():
        exact, _ = run(cell, x, state, engine="reference")
    assert (y.float() - exact).abs().max() < 0.05  # bfloat16 keeps ~3 significant digits


@pytest.mark.parametrize("name", ["lstm-layernorm-proj", "lstm-peephole", "gru", "gru-reset-before"])
def test_masked_steps_never_read_uninitialised_memory(name, sweep, monkeypatch):
    # Fill fresh allocations with NaN: a kernel that reads memory it never wrote turns its
    # gradients into NaN, whatever the allocator happened to return.
    original = torch.empty

    def nan_empty(*shape, **kwargs):
        return original(*shape, **kwargs).fill_(float("nan"))

    monkeypatch.setattr(torch, "empty", nan_empty)
    cell = randomize(CELLS[name]().double(), seed=4)
    x, state = inputs(cell, seed=6)
    ref_out, ref_grads = outputs_and_grads(cell, "reference", x, state, RAGGED_MASK)
    out, grads = outputs_and_grads(cell, "fused", x, state, RAGGED_MASK)
    assert max_diff(out, ref_out) < 1e-12 and max_diff(grads, ref_grads) < 1e-12


@pytest.mark.parametrize("name", ["lstm-vanilla", "lstm-peephole-proj", "gru", "rnn-tanh"])
def test_masks_that_broadcast_over_the_batch(name, sweep):
    # a (1, T) mask and a (1, P) recurrent mask mean the same for every sequence, in every path
    # (the kernels index them per row: they must see them broadcast, not read past their end)
    cell = randomize(CELLS[name]().double(), seed=5)
    x, state = inputs(cell, seed=2)
    mask = torch.tensor([[True, True, False, True, False, True]])
    rmask = torch.full((1, state[0].shape[1]), 0.5, dtype=torch.double)
    ref_out, ref_grads = outputs_and_grads(cell, "reference", x, state, mask, rmask)
    out, grads = outputs_and_grads(cell, "fused", x, state, mask, rmask)
    full_out, _ = outputs_and_grads(cell, "reference", x, state, mask.expand(B, T), rmask.expand(B, -1))
    assert max_diff(ref_out, full_out) < 1e-12
    assert max_diff(out, ref_out) < 1e-12 and max_diff(grads, ref_grads) < 1e-12


def test_run_refuses_mismatched_arguments_naming_them():
    cell = LSTMCell(I, H)
    x = torch.zeros(B, T, I)
    state = cell.initial_state(B)
    with pytest.raises(TypeError, match=r"state\[0\] is torch.float64 on cpu, `x` torch.float32"):
        run(cell, x, (state[0].double(), state[1]))
    with pytest.raises(ValueError, match=r"state\[1\] must have shape \(3, 5\), got \(2, 5\)"):
        run(cell, x, (state[0], state[1][:2]))
    with pytest.raises(ValueError, match=r"`state` must be a tuple of 2 tensor"):
        run(cell, x, state[:1])
    with pytest.raises(ValueError, match=r"the cell takes 4 features per step, `x` has 3"):
        run(cell, x[..., :3], state)
    with pytest.raises(ValueError, match=r"`x` must be a floating \(batch, time, features\) tensor, got a 2-D"):
        run(cell, x[0], state)
    with pytest.raises(TypeError, match=r"`mask` must be a torch.bool tensor on cpu, got torch.int64"):
        run(cell, x, state, mask=torch.ones(B, T, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`mask` must have shape \(3, 6\) \(or 1 for the batch\), got \(2, 6\)"):
        run(cell, x, state, mask=torch.ones(2, T, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"`recurrent_mask` must be a torch.float32 tensor"):
        run(cell, x, state, recurrent_mask=torch.ones(B, H, dtype=torch.double))
    # None starts from zeros; a mask with a batch axis of 1 holds for every sequence, in every path
    # (native takes its sequence lengths from the mask's rows)
    padded = torch.tensor([[True] * 4 + [False] * 2])
    xr = torch.randn(B, T, I)
    ref, _ = run(cell, xr, None, mask=padded.expand(B, T), engine="reference")
    for engine in ("auto", "native", "fused"):
        y, final = run(cell, xr, None, mask=padded, engine=engine)
        assert y.shape == (B, T, H) and final[0].shape == (B, H)
        assert (y - ref).abs().max() < 1e-5, engine


def test_relu_rnn_passes_nan_on_as_torch_does(sweep):
    # the compiled Elman kernels run without fastmath's no-NaN flag: a relu must not turn NaN into 0
    cell = randomize(CELLS["rnn-relu"]().double(), seed=2)
    x, state = inputs(cell, seed=8)
    x = x.detach().clone()
    x[1, 2, 0] = float("nan")
    x.requires_grad_()
    y_ref, _ = run(cell, x, state, engine="reference")
    y, _ = run(cell, x, state, engine="fused")
    assert torch.equal(torch.isnan(y), torch.isnan(y_ref)) and bool(torch.isnan(y[1, 2:]).all())
    (g_ref,) = torch.autograd.grad(y_ref.nan_to_num().sum(), x)
    (g,) = torch.autograd.grad(y.nan_to_num().sum(), x)
    assert torch.equal(torch.isnan(g), torch.isnan(g_ref))


@pytest.mark.parametrize("name", ["lstm-vanilla", "lstm-fgr", "gru", "rnn-tanh"])
def test_training_steps_release_their_activations(name, sweep):
    # An output that aliases a tensor the autograd node keeps would form a cycle through C++
    # that no collector breaks: every step's activations would stay alive forever.
    import gc
    import warnings

    cell = CELLS[name]()
    x = torch.randn(B, T, I, requires_grad=True)

    def step():
        y, final = run(cell, x, cell.initial_state(B), engine="fused")
        (y.sum() + sum(s.sum() for s in final)).backward()

    def live_tensors():
        gc.collect()
        with warnings.catch_warnings():  # scanning every object touches deprecated torch aliases
            warnings.simplefilter("ignore")
            return sum(1 for o in gc.get_objects() if _is_tensor(o))

    step()
    before = live_tensors()
    for _ in range(3):
        step()
    assert live_tensors() <= before


def _is_tensor(obj) -> bool:
    try:
        return isinstance(obj, torch.Tensor)
    except ReferenceError:  # a dead weakref.proxy (numba leaves some behind) raises on any access
        return False


class _CountMatmuls(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts the matrix products dispatched while it is active (the real ops run)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm, torch.ops.aten.bmm):
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["lstm-vanilla", "lstm-layernorm", "lstm-peephole-proj", "gru", "rnn-tanh"])
def test_fused_backward_skips_the_products_of_what_needs_no_gradient(name, sweep):
    # An input from data (a first layer) needs no gradient, nor does a frozen weight: their
    # products over all B*T rows are skipped, and every gradient that is needed is unchanged.
    cell = randomize(CELLS[name]().double(), seed=7)
    x, state = inputs(cell, seed=8)
    _, full = outputs_and_grads(cell, "fused", x, state)

    def backward_matmuls(x, frozen=()):
        for pname, p in cell.named_parameters():
            p.requires_grad_(pname not in frozen)
        try:
            y, final = run(cell, x, state, engine="fused")
            wanted = [t for t in (x, *state, *cell.parameters()) if t.requires_grad]
            with _CountMatmuls() as counted:
                grads = torch.autograd.grad(weighted_sum([y, *final]), wanted)
            return counted.count, dict(zip(map(id, wanted), grads))
        finally:
            for p in cell.parameters():
                p.requires_grad_(True)

    every = [x, *state, *cell.parameters()]
    n_all, got = backward_matmuls(x)
    assert all(max_diff([got[id(t)]], [g]) == 0 for t, g in zip(every, full))
    n_data, got = backward_matmuls(x.detach())  # the input from data
    assert n_data == n_all - 1
    assert all(max_diff([got[id(t)]], [g]) == 0 for t, g in zip(every[1:], full[1:]))
    n_frozen, got = backward_matmuls(x.detach(), frozen=("weight_ih", "weight_hh"))
    assert n_frozen <= n_data - 2  # one product each (the GRU's recurrent weight: two)
    kept = [(t, g) for t, g in zip(every, full) if id(t) in got]
    assert len(kept) == len(got) and all(max_diff([got[id(t)]], [g]) == 0 for t, g in kept)


@pytest.mark.parametrize("name", ["lstm-vanilla", "lstm-peephole-proj", "gru", "rnn-tanh"])
def test_fused_first_derivatives_under_create_graph_and_a_clear_error_for_a_second(name, sweep):
    # The fused backward is derived by hand, for first derivatives only. Under create_graph=True
    # the first derivatives are exact; differentiating them again must raise and say what to do,
    # not return second derivatives that silently miss the hand-derived part.
    cell = randomize(CELLS[name]().double(), seed=9)
    x, state = inputs(cell, seed=10)
    wanted = [x, *state, *cell.parameters()]
    ref_out, ref_grads = outputs_and_grads(cell, "reference", x, state)
    y, final = run(cell, x, state, engine="fused")
    grads = torch.autograd.grad(weighted_sum([y, *final]), wanted, create_graph=True)
    assert max_diff(grads, ref_grads) < 1e-12
    penalty = sum(g.pow(2).sum() for g in grads)
    with pytest.raises(RuntimeError, match="first derivatives only.*engine='reference'"):
        torch.autograd.grad(penalty, list(cell.parameters()), retain_graph=True)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        penalty.backward()
