"""The compiled one-step path for streaming inference (lstmkit/engine/stream.py).

It must give the layer's function exactly: against the reference loop in float64, against
``torch.nn.LSTMCell`` in float32, across carried state, weight updates and dtype changes, and it
must step aside (to the ordinary engine) for anything it does not cover.
"""

import pytest
import torch

from lstmkit.engine import fused, jit, stream
from lstmkit.layers import GRU, LSTM, SimpleRNN
from tests.helpers import max_diff, randomize

pytestmark = pytest.mark.skipif(not jit.AVAILABLE, reason="numba is not installed")


def _same_calls(fast, slow, batch, lengths, seed):
    """Call both layers on the same float64 inputs of these lengths in turn (the state carried from
    call to call) and check that every output agrees to 1e-12, the final states included."""
    gen = torch.Generator().manual_seed(seed)
    kept = []  # every output, to check that no later call changes it (the carried state is updated in place)
    with torch.no_grad():
        for T in lengths:
            x = torch.rand(batch, T, 3, generator=gen, dtype=torch.float64) * 4 - 2
            a, b = fast(x), slow(x)
            assert fast.engine_in_use == "fused" and slow.engine_in_use == "reference"
            a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
            for u, v in zip(a, b):
                assert u.shape == v.shape and u.dtype == torch.float64
                assert max_diff(u, v) < 1e-12
                kept.append((u, v))
    for u, v in zip(fast.states, slow.states):
        assert max_diff(u, v) < 1e-12
    for u, v in kept:
        assert max_diff(u, v) < 1e-12


def _pair(dtype=torch.float64, **options):
    fast = LSTM(7, input_size=3, stateful=True, **options).to(dtype)
    randomize(fast, seed=3)
    slow = LSTM(7, input_size=3, stateful=True, engine="reference", **options).to(dtype)
    slow.load_state_dict(fast.state_dict())
    return fast.eval(), slow.eval()


@pytest.mark.parametrize("batch,lengths", [(4, (1,) * 6), (3, (2, 9, 30))], ids=["one-step", "sequences"])
@pytest.mark.parametrize("return_sequences,return_state", [(False, False), (True, False), (True, True)])
def test_the_shortcut_matches_the_reference_loop_in_float64(batch, lengths, return_sequences, return_state):
    fast, slow = _pair(return_sequences=return_sequences, return_state=return_state)
    _same_calls(fast, slow, batch, lengths, seed=len(lengths))


_VARIANTS = ["lstm1997", "peephole", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "layernorm"]


@pytest.mark.parametrize("options", [{"variant": v} for v in _VARIANTS] + [{"proj_size": 4},
                                     {"variant": "peephole", "proj_size": 5}],
                         ids=_VARIANTS + ["projection", "peephole-projection"])
@pytest.mark.parametrize("batch,lengths", [(3, (1,) * 4), (2, (3, 1, 12))], ids=["one-step", "sequences"])
def test_every_other_variant_takes_the_fused_forward_kernel_and_matches_the_reference_loop(options, batch, lengths):
    fast, slow = _pair(return_sequences=True, return_state=True, **options)
    _same_calls(fast, slow, batch, lengths, seed=len(lengths))
    with torch.no_grad():
        x = torch.randn(batch, 2, 3, dtype=torch.float64)
        mine = tuple(s.clone() for s in fast.states)  # a state set by hand is read, never written
        fast.states, slow.states = mine, tuple(s.clone() for s in mine)
        kept = [s.clone() for s in mine]
        fast(x), slow(x)
        assert fast.__dict__["_stream_state"][0] is fast.__dict__["_states"]  # the shortcut ran
        assert all(max_diff(u, v) == 0 for u, v in zip(mine, kept))
        assert all(max_diff(u, v) < 1e-12 for u, v in zip(fast(x), slow(x)))
        # without carried state, and an output held stays as it was
        for layer in (fast, slow):
            layer.stateful = False
        a, b = fast(x), slow(x)
        held = [t.clone() for t in a]
        assert all(max_diff(u, v) < 1e-12 for u, v in zip(a, b))
        fast(x)
        assert all(max_diff(u, v) == 0 for u, v in zip(a, held))


def test_float32_matches_torch_lstm_cell_and_sees_weight_updates():
    layer = randomize(LSTM(64, input_size=2, stateful=True), seed=1).eval()
    cell = torch.nn.LSTMCell(2, 64)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data.copy_(getattr(layer.cell, name))
    gen = torch.Generator().manual_seed(2)
    h = c = torch.zeros(1, 64)
    with torch.no_grad():
        for step in range(5):
            if step == 3:  # an optimizer-style in-place update must show through the cached views
                layer.cell.weight_hh.mul_(0.5)
                cell.weight_hh.mul_(0.5)
            x = torch.randn(1, 1, 2, generator=gen)
            y = layer(x)
            h, c = cell(x[:, 0], (h, c))
            assert layer.engine_in_use == "fused"
            assert max_diff(y, h) < 1e-5 and max_diff(layer.states[1], c) < 1e-5


def test_dtype_change_and_state_set_by_hand():
    fast, slow = _pair(torch.float32)
    x = torch.randn(2, 1, 3)
    with torch.no_grad():
        fast(x)
        fast.to(torch.float64), slow.to(torch.float64)
        state = (torch.randn(2, 7, dtype=torch.float64), torch.randn(2, 7, dtype=torch.float64))
        fast.states, slow.states = state, state
        a, b = fast(x.double()), slow(x.double())
    assert fast.engine_in_use == "fused" and a.dtype == torch.float64
    assert max_diff(a, b) < 1e-12


def test_the_shortcut_steps_aside():
    fast, _ = _pair()
    x = torch.randn(2, 1, 3, dtype=torch.float64)
    fast(x)  # with autograd on, the engine runs (a graph is needed)
    assert fast.engine_in_use == "native"
    with torch.no_grad():
        fast(x, initial_state=(torch.zeros(2, 7, dtype=torch.float64),) * 2)
        assert fast.engine_in_use == "native"
        fast.reset_states()
        fast(torch.randn(8, 2, 3, dtype=torch.float64))  # two steps (batch 8: oneDNN's)
        assert fast.engine_in_use == "native"
        fgr = LSTM(4, variant="fgr", input_size=3)  # gate recurrence: no compiled kernel
        fgr(torch.randn(2, 1, 3))
        assert fgr.engine_in_use == "reference"  # its own step, as before
        wide = LSTM(1024, variant="peephole", input_size=3)
        wide(torch.randn(2, 1, 3))  # a variant's step past the size limits: its own step
        assert wide.engine_in_use == "reference"
        reference = LSTM(4, input_size=3, engine="reference")
        reference(torch.randn(2, 1, 3))
        assert reference.engine_in_use == "reference"
        with pytest.raises(ValueError, match="carries a state for batch size 8"):
            fast(torch.randn(3, 1, 3, dtype=torch.float64))
        with pytest.raises(TypeError, match="does not match the layer's weights"):
            fast(torch.randn(8, 1, 3))


# -- whole sequences at small batches ----------------------------------------------------------

def test_sequences_match_torch_lstm_and_see_every_kind_of_weight_update():
    layer = randomize(LSTM(16, input_size=2, return_sequences=True), seed=5).eval()
    ref = torch.nn.LSTM(2, 16, batch_first=True)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(ref, f"{name}_l0").data.copy_(getattr(layer.cell, name))
    gen = torch.Generator().manual_seed(6)
    # updates that bump the version counter and updates that do not (.data, NumPy, a fused optimizer)
    updates = [
        lambda p: p.mul_(0.5),
        lambda p: p.data.mul_(0.5),
        lambda p: p.detach().numpy().__imul__(0.5),
    ]
    with torch.no_grad():
        for update in [None, *updates]:
            if update is not None:
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    update(getattr(layer.cell, name))
                    getattr(ref, f"{name}_l0").mul_(0.5)
            x = torch.randn(4, 12, 2, generator=gen)
            y = layer(x)
            assert layer.engine_in_use == "fused"
            assert max_diff(y, ref(x)[0]) < 1e-5
    opt = torch.optim.Adam(layer.parameters(), lr=0.1, fused=True)
    for p in layer.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    expected = LSTM(16, input_size=2, return_sequences=True, engine="reference").eval()
    expected.load_state_dict(layer.state_dict())
    with torch.no_grad():
        assert max_diff(layer(x), expected(x)) < 1e-5


def test_sequences_under_inference_mode_and_the_carried_state_kept_apart():
    with torch.inference_mode():  # parameters created here are inference tensors
        layer = LSTM(8, input_size=3, stateful=True).eval()
        ref = LSTM(8, input_size=3, stateful=True, engine="reference").eval()
        ref.load_state_dict(layer.state_dict())
        for _ in range(2):
            x = torch.randn(2, 5, 3)
            assert max_diff(layer(x), ref(x)) < 1e-5
            assert layer.engine_in_use == "fused"
    fast, slow = _pair(return_state=True)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    with torch.no_grad():
        for layer in (fast, slow):
            _, h, c = layer(x)
            h.add_(100.0)  # an output edited in place must leave the carried state alone
            c.add_(100.0)
        assert max_diff(fast.states[0], slow.states[0]) < 1e-12 and float(fast.states[0].abs().max()) < 1
        assert max_diff(fast(x)[0], slow(x)[0]) < 1e-12


def test_the_carried_state_updated_in_place_never_changes_a_state_handed_out():
    # The shortcut writes each new state into the arrays of the state it made (engine/stream.py):
    # a state read through `states`, returned by return_state, set through `states` or saved by
    # an autograd graph in between must keep its values.
    fast, slow = _pair(return_state=True)
    gen = torch.Generator().manual_seed(5)
    xs = [torch.randn(2, T, 3, generator=gen, dtype=torch.float64) for T in (1, 1, 4, 1, 1)]
    with torch.no_grad():
        fast(xs[0]), slow(xs[0])
        _, h_out, c_out = fast(xs[1])
        slow(xs[1])
        handed = [s.clone() for s in (h_out, c_out)]
        read = fast.states
        read_values = [s.clone() for s in read]
        fast(xs[2]), slow(xs[2])
        assert all(max_diff(a, b) == 0 for a, b in zip((h_out, c_out), handed))
        assert all(max_diff(a, b) == 0 for a, b in zip(read, read_values))
        mine = (torch.rand(2, 7, dtype=torch.float64), torch.rand(2, 7, dtype=torch.float64))
        kept = [s.clone() for s in mine]
        fast.states, slow.states = mine, tuple(s.clone() for s in mine)
        fast(xs[3]), slow(xs[3])
        assert all(max_diff(a, b) == 0 for a, b in zip(mine, kept))
        fast(xs[4]), slow(xs[4])  # now in the shortcut's own arrays again
    for layer in (fast, slow):  # a step with a graph saves the carried state for its backward
        layer.train()
        layer.zero_grad()
    ys = [layer(xs[0].requires_grad_(False))[0] for layer in (fast, slow)]
    with torch.no_grad():  # inference in between must not change what the graph saved
        fast(xs[1]), slow(xs[1])
    for y in ys:
        y.sum().backward()
    for a, b in zip(fast.parameters(), slow.parameters()):
        assert max_diff(a.grad, b.grad) < 1e-12


def test_sequences_step_aside_for_parametrized_weights_a_dtype_change_and_lstmkit_jit_off(monkeypatch):
    from torch.nn.utils import parametrize

    class Half(torch.nn.Module):
        def forward(self, w):
            return w * 0.5

    layer = LSTM(8, input_size=3)
    layer(torch.randn(2, 5, 3))
    parametrize.register_parametrization(layer.cell, "weight_hh", Half())
    with torch.no_grad():
        layer(torch.randn(2, 5, 3))
        assert layer.engine_in_use == "native"
        layer(torch.randn(2, 1, 3))
        assert layer.engine_in_use == "native"
    fast, slow = _pair(torch.float32)
    with torch.no_grad():
        x = torch.randn(2, 5, 3)
        fast(x), slow(x)  # each carries a float32 state, which .to() converts with the weights
        fast.to(torch.float64), slow.to(torch.float64)
        assert fast.states[0].dtype == torch.float64
        x = x.double()
        assert max_diff(fast(x), slow(x)) < 1e-6 and fast.engine_in_use == "fused"
    monkeypatch.setattr(fused, "JIT_ENABLED", False)  # as LSTMKIT_JIT=0 sets it at import
    off = LSTM(8, input_size=3)
    with torch.no_grad():
        off(torch.randn(2, 5, 3))
    assert off.engine_in_use == "native"


def test_sequences_step_aside_where_they_do_not_win_or_apply():
    with torch.no_grad():
        assert LSTM(8)(torch.randn(5, 3, 2)) is not None
        layer = LSTM(8)
        layer(torch.randn(5, 3, 2))
        assert layer.engine_in_use == "native"  # batch 5: oneDNN's
        wide = LSTM(1024)
        wide(torch.randn(2, 3, 2))
        assert wide.engine_in_use == "native"  # 2 x 4096 gate rows: oneDNN's two-thread product
        backwards = LSTM(8, go_backwards=True)
        backwards(torch.randn(2, 3, 2))
        assert backwards.engine_in_use == "native"
        masked = LSTM(8)
        masked(torch.randn(2, 3, 2), mask=torch.ones(2, 3, dtype=torch.bool))
        assert masked.engine_in_use == "native"
    layer = LSTM(8)
    layer(torch.randn(2, 3, 2))  # autograd on: a graph is needed
    assert layer.engine_in_use == "native"


# -- the GRU ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("return_sequences,return_state", [(False, False), (True, True)])
def test_gru_matches_the_reference_loop_in_float64(reset_after, return_sequences, return_state):
    options = dict(input_size=3, stateful=True, reset_after=reset_after, return_sequences=return_sequences,
                   return_state=return_state)
    fast = GRU(7, **options).double()
    randomize(fast, seed=8)
    slow = GRU(7, engine="reference", **options).double()
    slow.load_state_dict(fast.state_dict())
    fast.eval(), slow.eval()
    _same_calls(fast, slow, 3, (1, 1, 7, 20, 1), seed=9)  # one-step and sequence calls


def test_gru_float32_matches_torch_gru_and_steps_aside_above_its_sizes():
    layer = randomize(GRU(16, input_size=2, return_sequences=True), seed=10).eval()
    ref = torch.nn.GRU(2, 16, batch_first=True)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(ref, f"{name}_l0").data.copy_(getattr(layer.cell, name))
    with torch.no_grad():
        for B in (1, 4, 9):  # batch 9: the engine's own path
            x = torch.randn(B, 12, 2)
            assert max_diff(layer(x), ref(x)[0]) < 1e-5
        layer.cell.weight_hh.data.mul_(0.5)  # read where it is: no cached copy to go stale
        ref.weight_hh_l0.data.mul_(0.5)
        x = torch.randn(2, 12, 2)
        assert max_diff(layer(x), ref(x)[0]) < 1e-5


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("return_sequences,return_state", [(False, False), (True, True)])
def test_the_elman_rnn_matches_the_reference_loop_in_float64(nonlinearity, return_sequences, return_state):
    options = dict(input_size=3, stateful=True, nonlinearity=nonlinearity, return_sequences=return_sequences,
                   return_state=return_state)
    fast = randomize(SimpleRNN(7, **options).double(), seed=11).eval()
    slow = SimpleRNN(7, engine="reference", **options).double().eval()
    slow.load_state_dict(fast.state_dict())
    _same_calls(fast, slow, 3, (1, 1, 7, 20, 1), seed=12)  # one-step and sequence calls


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_the_elman_rnn_float32_matches_torch_rnn(nonlinearity):
    layer = randomize(SimpleRNN(16, input_size=2, nonlinearity=nonlinearity, return_sequences=True), seed=13).eval()
    ref = torch.nn.RNN(2, 16, nonlinearity=nonlinearity, batch_first=True)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(ref, f"{name}_l0").data.copy_(getattr(layer.cell, name))
    with torch.no_grad():
        for B, T in ((1, 1), (4, 12), (9, 12)):  # batch 9: the engine's own path
            x = torch.randn(B, T, 2)
            assert max_diff(layer(x), ref(x)[0]) < 1e-5
    assert stream._prepared(layer)[2] == "rnn"  # the layer takes the shortcut's kernel


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
@pytest.mark.parametrize("make", [lambda: LSTM(8, input_size=3), lambda: LSTM(8, variant="peephole", input_size=3),
                                  lambda: GRU(8, input_size=3)], ids=["vanilla", "peephole", "gru"])
def test_a_trace_under_no_grad_records_torch_ops_not_the_compiled_kernels(make):
    # the shortcut and the compiled sweep run in NumPy and numba, which a trace cannot see: it
    # would record their outputs as constants
    layer = make().eval()
    with torch.no_grad():
        traced = torch.jit.trace(layer, torch.randn(2, 5, 3))
        x = torch.randn(2, 5, 3)
        assert max_diff(traced(x), layer(x)) < 1e-5


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_a_copied_stateful_layer_and_its_original_carry_their_own_states(how):
    import copy
    import pickle

    copier = {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": lambda m: pickle.loads(pickle.dumps(m))}[how]
    fast, slow = _pair()
    gen = torch.Generator().manual_seed(9)
    xs = [torch.randn(2, T, 3, generator=gen, dtype=torch.float64) for T in (1, 4, 1, 1, 3)]
    with torch.no_grad():
        for x in xs[:2]:
            fast(x), slow(x)
        fast2, slow2 = copier(fast), copy.deepcopy(slow)
        for x in xs[2:]:  # each steps on its own: neither moves the other's state
            for layer in (fast, slow, fast2, slow2):
                layer(x)
        fast2(xs[2]), slow2(xs[2])
    for a, b in ((fast, slow), (fast2, slow2)):
        assert all(max_diff(u, v) < 1e-12 for u, v in zip(a.states, b.states))
    a = fast2(xs[1])  # a graph-building call starts from the same, current state
    assert max_diff(a, slow2(xs[1])) < 1e-12


@pytest.mark.parametrize("options", [{"variant": "peephole"}, {"proj_size": 2}, {}],
                         ids=["peephole", "projection", "vanilla"])
@pytest.mark.parametrize("T", [1, 4])
def test_the_returned_final_state_is_contiguous_and_apart_from_the_output(options, T):
    layer = LSTM(5, input_size=3, return_sequences=True, return_state=True, **options).eval()
    with torch.no_grad():
        y, h, c = layer(torch.randn(2, T, 3))
        assert layer.engine_in_use == "fused" and h.is_contiguous() and c.is_contiguous()
        h.view(-1)
        kept = h.clone()
        y.add_(1.0)  # editing the output in place leaves the returned state alone
        assert torch.equal(h, kept)
        layer.return_sequences = False
        out, h = layer(torch.randn(2, T, 3))[:2]
        assert out.is_contiguous()


@pytest.mark.filterwarnings("ignore")
def test_torch_compile_runs_torch_ops_instead_of_the_compiled_kernels():
    # dynamo cannot trace into numba's dispatcher: under torch.compile the layer takes torch's ops
    fast, slow = _pair(variant="peephole")
    compiled = torch.compile(fast, backend="eager")
    x = torch.randn(2, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(2):
            assert max_diff(compiled(x), slow(x)) < 1e-12


def test_a_relu_elman_rnn_passes_nan_on_as_torch_does():
    layer = SimpleRNN(4, input_size=3, nonlinearity="relu", return_sequences=True).eval()
    x = torch.randn(1, 3, 3)
    x[0, 1, 0] = float("nan")
    with torch.no_grad():
        y = layer(x)
        assert layer.engine_in_use == "fused" and not torch.isnan(y[0, 0]).any() and torch.isnan(y[0, 1:]).all()
        layer.stateful = True  # step by step: the step kernel
        steps = [layer(x[:, t:t + 1]) for t in range(3)]
    assert layer.engine_in_use == "fused" and not torch.isnan(steps[0]).any()
    assert all(torch.isnan(s).all() for s in steps[1:])


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")  # torch.func's own
@pytest.mark.parametrize("make", [lambda: LSTM(4, input_size=3), lambda: LSTM(4, variant="peephole", input_size=3),
                                  lambda: GRU(4, input_size=3), lambda: SimpleRNN(4, input_size=3)],
                         ids=["vanilla", "peephole", "gru", "rnn"])
def test_torch_func_and_forward_mode_ad_see_the_cells_torch_ops(make):
    from torch.autograd import forward_ad

    layer = make().eval()
    ref = make().eval()
    ref.engine = "reference"
    ref.load_state_dict(layer.state_dict())
    x, v = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    with torch.no_grad():
        _, expected = torch.func.jvp(ref, (x,), (v,))
        _, tangent = torch.func.jvp(layer, (x,), (v,))
        assert max_diff(tangent, expected) < 1e-5
        with forward_ad.dual_level():  # the tangent used to be dropped by the shortcut
            tangent = forward_ad.unpack_dual(layer(forward_ad.make_dual(x, v))).tangent
        assert tangent is not None and max_diff(tangent, expected) < 1e-5
        xs = torch.randn(3, 2, 5, 3)
        assert max_diff(torch.func.vmap(layer)(xs), torch.stack([ref(xi) for xi in xs])) < 1e-5
    with torch.no_grad():  # and outside the transforms, the shortcut again
        layer(x)
    assert layer.engine_in_use == "fused"


def test_a_cell_setting_changed_after_the_first_call_reaches_the_shortcut():
    import pickle

    layer = SimpleRNN(4, input_size=3, return_sequences=True).eval()
    ref = SimpleRNN(4, input_size=3, engine="reference", return_sequences=True).eval()
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(1, 4, 3)
    with torch.no_grad():
        layer(x)
        layer.cell.nonlinearity = ref.cell.nonlinearity = "relu"
        assert max_diff(layer(x), ref(x)) < 1e-6
    assert "_stream" not in layer.__getstate__()  # NumPy copies of the weights are not pickled
    assert max_diff(pickle.loads(pickle.dumps(layer))(x), ref(x)) < 1e-6


def _twins(make, dtype=torch.float64):
    fast = randomize(make().to(dtype), seed=3)
    slow = make(engine="reference").to(dtype)
    slow.load_state_dict(fast.state_dict())
    return fast.eval(), slow.eval()


@pytest.mark.parametrize("make", [
    lambda **o: LSTM(7, input_size=3, stateful=True, **o),
    lambda **o: GRU(7, input_size=3, stateful=True, **o),
    lambda **o: GRU(7, input_size=3, stateful=True, reset_after=False, **o),
    lambda **o: SimpleRNN(7, input_size=3, stateful=True, **o),
    lambda **o: SimpleRNN(7, input_size=3, stateful=True, nonlinearity="relu", **o),
], ids=["lstm", "gru", "gru-reset-before", "rnn", "rnn-relu"])
def test_the_next_step_of_a_stream_checks_again_whatever_can_change_between_steps(make, monkeypatch):
    # After one step through stream_step, the layer's next steps take _next_step, which checks only
    # what can change between two calls. Every change here must either keep the result exact
    # (against the reference loop) or hand the call back to stream_step, whose checks decide.
    outcomes = []
    real = stream._next_step

    def counted(*args):
        out = real(*args)
        outcomes.append(out is not None)
        return out

    monkeypatch.setattr(stream, "_next_step", counted)
    fast, slow = _twins(make)
    gen = torch.Generator().manual_seed(11)

    def step(expect_short, *, batch=2, engine="fused", dtype=torch.float64):
        x = torch.randn(batch, 1, 3, generator=gen, dtype=dtype)
        outcomes.clear()
        a, b = fast(x), slow(x)
        assert fast.engine_in_use == engine
        assert outcomes[-1:] == ([True] if expect_short else [False] * len(outcomes[-1:]))
        assert a.shape == b.shape and max_diff(a, b) < (1e-12 if dtype == torch.float64 else 1e-5)

    def twin(change):
        for layer in (fast, slow):
            change(layer)

    with torch.no_grad():
        step(False)  # the first step makes the plan
        step(True)
        step(True)
        twin(lambda m: m.cell.weight_hh.mul_(0.5))  # in place (an optimizer step): the views see it
        step(True)
        new_hh = torch.rand(fast.cell.weight_hh.shape, generator=gen, dtype=torch.float64) - 0.5
        twin(lambda m: setattr(m.cell.weight_hh, "data", new_hh.clone()))  # new storage
        step(False)
        step(True)
        new_ih = torch.nn.Parameter(torch.rand(fast.cell.weight_ih.shape, generator=gen, dtype=torch.float64) - 0.5)
        twin(lambda m: setattr(m.cell, "weight_ih", torch.nn.Parameter(new_ih.detach().clone())))
        step(False)
        step(True)
        twin(lambda m: m.reset_states())
        step(False)
        step(True)
        state = (torch.rand(2, 7, generator=gen, dtype=torch.float64),) * len(fast.state_names)
        twin(lambda m: setattr(m, "states", tuple(s.clone() for s in state)))
        step(False)
        step(True)
        twin(lambda m: setattr(m, "return_sequences", True))
        step(False)
        step(True)  # (2, 1, 7) on the short way too
        twin(lambda m: setattr(m, "return_sequences", False))
        step(False)
        twin(lambda m: m.train())  # no dropout: the shortcut still runs, but the long way
        step(False)
        step(False)
        twin(lambda m: m.eval())  # the same carried arrays all along: the plan holds again
        step(True)
        twin(lambda m: setattr(m, "stateful", False))  # from zeros, every time
        step(False)
        twin(lambda m: setattr(m, "stateful", True))  # goes on from the state it carried before
        step(True)
        twin(lambda m: setattr(m, "return_state", True))  # a tuple back: the long way, always
        x = torch.randn(2, 1, 3, dtype=torch.float64)
        assert all(max_diff(u, v) < 1e-12 for u, v in zip(fast(x), slow(x)))
        twin(lambda m: setattr(m, "return_state", False))
        step(True)
        x = torch.randn(2, 1, 3, dtype=torch.float64, requires_grad=True)  # read through a detached view
        assert max_diff(fast(x), slow(x)) < 1e-12
        step(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast: torch's ops
            y = fast(torch.randn(2, 1, 3, dtype=torch.float64))
        assert fast.engine_in_use != "fused" and y.shape == (2, 7)
        slow.states = fast.states
        step(False)
        step(True)
        with pytest.raises(ValueError, match="carries a state for batch size 2"):
            fast(torch.randn(5, 1, 3, dtype=torch.float64))
        with pytest.raises(TypeError, match="does not match the layer's weights"):
            fast(torch.randn(2, 1, 3))
        twin(lambda m: m.to(torch.float32))  # the carried state follows the weights
        step(False, dtype=torch.float32)
        step(True, dtype=torch.float32)
        twin(lambda m: setattr(m, "engine", "reference"))
        step(False, engine="reference", dtype=torch.float32)
    assert max_diff(fast.states, slow.states) < 1e-5


_PRUNED = {"lstm": lambda **o: LSTM(4, input_size=3, stateful=True, **o),
           "peephole": lambda **o: LSTM(4, input_size=3, stateful=True, variant="peephole", **o),
           "gru": lambda **o: GRU(4, input_size=3, stateful=True, **o),
           "rnn": lambda **o: SimpleRNN(4, input_size=3, stateful=True, **o)}


@pytest.mark.parametrize("cell,weight", [(c, w) for c in _PRUNED for w in ("bias_hh", "weight_hh")]
                         + [("peephole", "weight_ci")])
def test_a_weight_pruned_or_normalised_mid_stream_reaches_every_later_step(cell, weight):
    # torch.nn.utils.prune renames the weight (weight_hh_orig) and hooks the cell's call to make
    # the pruned one, a call the kernels never make: the shortcut must step aside, not read the
    # unpruned weight (pruning the last parameter keeps the parameter objects and their order) or
    # fail on the missing name.
    import torch.nn.utils.prune as prune

    make = _PRUNED[cell]
    fast, slow = _twins(make)
    gen = torch.Generator().manual_seed(13)
    xs = [torch.randn(2, 1, 3, generator=gen, dtype=torch.float64) for _ in range(5)]
    with torch.no_grad():
        for x in xs[:2]:
            fast(x), slow(x)
        for layer in (fast, slow):
            prune.l1_unstructured(layer.cell, weight, amount=0.5)
        for x in xs[2:]:
            assert max_diff(fast(x), slow(x)) < 1e-12
        assert stream._prepared(fast) is None
    with torch.no_grad():  # spectral_norm renames and hooks the same way
        layer = make().double().eval()
        torch.nn.utils.spectral_norm(layer.cell, "weight_hh")
        layer(xs[0])
        assert stream._prepared(layer) is None


class _Marked(torch.Tensor):
    """A tensor subclass: its own ``__torch_function__`` must see every op, so no shortcut."""


class _Doubled(LSTM):
    """A subclass with a forward of its own, which only ``nn.Module.__call__`` runs."""

    def forward(self, x, *args, **kwargs):
        return super().forward(x, *args, **kwargs) * 2.0


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("make", [_PRUNED["lstm"], _PRUNED["gru"], _PRUNED["rnn"]], ids=["lstm", "gru", "rnn"])
def test_the_next_step_skips_the_module_call_only_where_that_call_would_do_nothing_more(make, monkeypatch):
    # Recurrent.__call__ answers the next step of a stream itself (stream.next_call), without
    # nn.Module.__call__ and forward. Wherever that call would do more (hooks on the layer or on
    # every module, a graph, a subclass's input, keyword arguments, a trace, module.compile())
    # it must go the usual way, and the outputs match the reference twin's either way.
    from torch.nn.modules.module import register_module_forward_hook

    from lstmkit.layers import recurrent

    fast, slow = _twins(make)
    short = []  # a call of fast answered by the shortcut (the twin never has a plan)

    def counted(*args):
        out = stream.next_call(*args)
        short.append(out is not None)
        return out

    monkeypatch.setattr(recurrent, "next_call", counted)
    gen = torch.Generator().manual_seed(17)

    def step(expect_short, call=lambda layer, x: layer(x), slow_call=None, *, offset=0.0):
        x = torch.randn(2, 1, 3, generator=gen, dtype=torch.float64)
        short.clear()
        a = call(fast, x)
        assert any(short) == expect_short
        b = (slow_call or call)(slow, x) + offset
        assert a.shape == b.shape and max_diff(a, b) < 1e-12

    with torch.no_grad():
        step(False)  # the first step makes the plan
        step(True)
        handle = fast.register_forward_hook(lambda m, args, out: out + 1.0)
        step(False, offset=1.0)
        handle.remove()
        step(True)
        handle = fast.register_forward_pre_hook(lambda m, args: (args[0] * 2.0,))
        step(False, slow_call=lambda layer, x: layer(x * 2.0))
        handle.remove()
        step(True)
        seen = []
        handle = register_module_forward_hook(lambda m, args, out: seen.append(m))
        step(False)
        handle.remove()
        assert fast in seen
        step(True)
        step(False, lambda layer, x: layer(x=x))
        step(False, lambda layer, x: layer(x.as_subclass(_Marked)).as_subclass(torch.Tensor))
        assert all(type(t) is _Marked for t in fast.states)  # the subclass's ops made the state
        step(False)  # a state of the subclass: its ops again
        fast.reset_states(), slow.reset_states()
        step(False)  # the plan is made again
        step(True)
        example = torch.randn(2, 1, 3, generator=gen, dtype=torch.float64)
        short.clear()
        torch.jit.trace(torch.nn.Sequential(fast), example, check_trace=False)  # torch ops, not the kernels
        assert not any(short)
        slow(example)
        step(False)
        step(True)
    with torch.enable_grad():  # a graph: the engine path
        step(False, lambda layer, x: layer(x).detach())
    with torch.no_grad():
        step(False)
        step(True)
        fast.compile(backend="eager")
        step(False)


def test_a_forward_of_a_subclass_or_the_instance_runs_on_every_step_of_a_stream():
    doubled = _Doubled(5, input_size=3, stateful=True).eval()
    plain = LSTM(5, input_size=3, stateful=True).eval()
    plain.load_state_dict(doubled.state_dict())
    own = LSTM(5, input_size=3, stateful=True).eval()
    own.load_state_dict(doubled.state_dict())
    calls = []
    real = own.forward
    own.forward = lambda x, *a, **k: (calls.append(1), real(x, *a, **k))[1]
    with torch.no_grad():
        for _ in range(4):
            x = torch.randn(1, 1, 3)
            expected = plain(x)
            assert torch.equal(doubled(x), expected * 2.0)
            assert torch.equal(own(x), expected)
    assert len(calls) == 4


def _neg_bit(*shape, dtype=torch.float64, seed=0):
    """A tensor with torch's negative bit set (a view of ``z.conj().imag``), which NumPy cannot read."""
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    z = torch.randn(*shape, dtype=complex_dtype, generator=torch.Generator().manual_seed(seed))
    t = z.conj().imag
    assert t.is_neg()
    return t


@pytest.mark.parametrize("make", list(_PRUNED.values()), ids=list(_PRUNED))
def test_inputs_states_and_gradients_with_torch_s_negative_bit_are_read_by_value(make):
    # x.numpy() refuses such a tensor; the shortcut and the stream must read its values, an input,
    # a state or a weight (each failed with "Can't call numpy() on Tensor that has negative bit
    # set"), and so must the fused path in training, its gradient too
    fast, slow = _twins(make)
    with torch.no_grad():
        for seed in range(4):  # a stream: the first step, then the short way
            x = _neg_bit(2, 1, 3, seed=seed)
            assert max_diff(fast(x), slow(x)) < 1e-12
        state = tuple(_neg_bit(2, 4, seed=9 + i) for i in range(len(fast.state_names)))
        fast.states, slow.states = state, state
        for seed in range(2):
            x = _neg_bit(2, 1, 3, seed=seed)
            assert max_diff(fast(x), slow(x)) < 1e-12
        fast.return_sequences = slow.return_sequences = True
        x = _neg_bit(2, 6, 3, seed=5)
        assert max_diff(fast(x), slow(x)) < 1e-12
        weight = _neg_bit(*fast.cell.weight_hh.shape, seed=8)
        for layer in (fast, slow):
            layer.cell.weight_hh.data = weight
        assert fast.cell.weight_hh.is_neg()
        assert max_diff(fast(x), slow(x)) < 1e-12
    fast.train(), slow.train()
    fast.reset_states(), slow.reset_states()
    fast.engine = "fused"
    x = _neg_bit(2, 6, 3, seed=6).requires_grad_()
    dy = _neg_bit(2, 6, 4, seed=7)
    fast(x).backward(dy)
    grads = [p.grad.clone() for p in fast.parameters()]
    x_grad = x.grad.clone()
    x.grad = None
    slow(x).backward(dy)
    assert max_diff(x.grad, x_grad) < 1e-10
    for a, p in zip(grads, slow.parameters()):
        assert max_diff(a, p.grad) < 1e-10


@pytest.mark.parametrize("make", [_PRUNED["lstm"], _PRUNED["rnn"]], ids=["lstm", "rnn"])
def test_a_forward_or_call_patched_in_runs_on_every_step_of_a_stream(make, monkeypatch):
    # mock.patch on the class, a subclass's or torch's own _call_impl, nn.Module.__call__ (as
    # torch.fx's tracer patches it): each runs on every step, as through nn.Module.__call__
    from lstmkit.layers.recurrent import Recurrent

    layer = make().eval()
    x = torch.randn(1, 1, 3)
    with torch.no_grad():
        layer(x), layer(x)  # a stream in progress: the next step would take the shortcut
        for owner, name in ((Recurrent, "forward"), (type(layer), "_call_impl"), (torch.nn.Module, "_call_impl"),
                            (torch.nn.Module, "__call__"), (layer, "_call_impl")):
            calls = []
            real = getattr(owner, name)

            def spy(*args, real=real, **kwargs):
                calls.append(1)
                return real(*args, **kwargs)

            with monkeypatch.context() as m:
                m.setattr(owner, name, spy if owner is layer else lambda *a, spy=spy, **k: spy(*a, **k))
                for _ in range(3):
                    layer(x)
            assert len(calls) == 3, (owner, name)
            layer(x), layer(x)  # the shortcut again


def test_an_fx_tracer_with_the_layer_as_a_leaf_records_its_call_mid_stream():
    from lstmkit.layers.recurrent import Recurrent

    class Leaf(torch.fx.Tracer):
        def is_leaf_module(self, m, name):
            return isinstance(m, Recurrent) or super().is_leaf_module(m, name)

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = LSTM(4, input_size=3, stateful=True).eval()
            self.register_buffer("c", torch.ones(1, 1, 3))

        def forward(self, x):
            with torch.no_grad():
                return self.lstm(self.c) + x

    wrap = Wrap()
    with torch.no_grad():
        wrap.lstm(wrap.c), wrap.lstm(wrap.c)  # a stream in progress
    graph = Leaf().trace(wrap)
    assert any(n.op == "call_module" and n.target == "lstm" for n in graph.nodes)


def test_the_profiler_records_every_step_of_a_stream_as_a_module_call():
    from torch.profiler import profile

    layer = LSTM(4, input_size=3, stateful=True).eval()
    x = torch.randn(1, 1, 3)
    with torch.no_grad():
        layer(x), layer(x)
        with profile(with_stack=True, with_modules=True) as prof:
            for _ in range(4):
                layer(x)
    assert sum(e.name.startswith("nn.Module: LSTM") for e in prof.events()) == 4


def test_a_weight_swapped_for_another_layout_of_the_same_memory_reaches_the_next_step():
    # `.data =` a view at the same address (a transposed square W_hh): the same data_ptr, so only
    # the layout tells the cached NumPy view is stale (it was 0.43 off the reference)
    fast, slow = _twins(_PRUNED["rnn"])
    gen = torch.Generator().manual_seed(21)
    xs = [torch.randn(2, 1, 3, generator=gen, dtype=torch.float64) for _ in range(4)]
    with torch.no_grad():
        for x in xs[:2]:
            fast(x), slow(x)
        address = fast.cell.weight_hh.data_ptr()
        for layer in (fast, slow):
            layer.cell.weight_hh.data = layer.cell.weight_hh.data.t()
        assert fast.cell.weight_hh.data_ptr() == address
        for x in xs[2:]:
            assert max_diff(fast(x), slow(x)) < 1e-12


@pytest.mark.parametrize("make", list(_PRUNED.values()), ids=list(_PRUNED))
def test_dispatch_modes_see_torch_ops_and_fake_tensors_never_reach_the_kernels(make):
    # under a TorchDispatchMode every op must pass through the mode: FlopCounterMode counts the
    # step's products, and FakeTensorMode (real inputs allowed) never hands a fake tensor's
    # missing data to a kernel, which had left NaN in the carried state for every later step
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    fast, slow = _twins(make)
    gen = torch.Generator().manual_seed(23)
    xs = [torch.randn(2, 1, 3, generator=gen, dtype=torch.float64) for _ in range(5)]
    with torch.no_grad():
        for x in xs[:2]:
            assert max_diff(fast(x), slow(x)) < 1e-12
        with FlopCounterMode(display=False) as counter:
            assert max_diff(fast(xs[2]), slow(xs[2])) < 1e-12
        assert counter.get_total_flops() > 0
        with FakeTensorMode(allow_non_fake_inputs=True):
            out = fast(xs[3])
        assert type(out).__name__ == "FakeTensor"  # torch's ops ran, on fake tensors
        assert all(type(t).__name__ == "FakeTensor" for t in fast.states)  # as torch.nn.LSTM's would be
        assert type(fast(xs[3])).__name__ == "FakeTensor"  # a fake state carried on: not read as data
        fast.reset_states(), slow.reset_states()
        for x in xs[3:]:
            assert max_diff(fast(x), slow(x)) < 1e-12
