"""Recurrent layer behaviour: masks, state, options, configs, and clear errors on bad input."""

import json

import numpy as np
import pytest
import torch

from lstmkit.cells import VARIANTS
from lstmkit.layers import GRU, LSTM, Bidirectional, SimpleRNN, deserialize, serialize
from tests.helpers import randomize

LAYERS = {
    **{f"lstm-{v}": (lambda v=v, **kw: LSTM(5, variant=v, input_size=3, **kw)) for v in VARIANTS},
    "gru": lambda **kw: GRU(5, input_size=3, **kw),
    "rnn": lambda **kw: SimpleRNN(5, input_size=3, **kw),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_padded_batch_equals_each_sequence_alone(name):
    layer = randomize(LAYERS[name](return_sequences=True, return_state=True).double())
    x = torch.randn(3, 7, 3, dtype=torch.double)
    # pre-padding for one row, post-padding for another, and a missing step in the middle for the third
    mask = torch.zeros(3, 7, dtype=torch.bool)
    mask[0] = True
    mask[1, 4:] = True
    mask[2, [0, 1, 3, 5, 6]] = True
    out = layer(x, mask=mask)
    y, final = out[0], out[1:]
    for b in range(3):
        alone = layer(x[b:b + 1, mask[b]])
        assert torch.allclose(y[b, mask[b]], alone[0][0], atol=1e-12)
        assert torch.all(y[b, ~mask[b]] == 0)
        for s, s_alone in zip(final, alone[1:]):
            assert torch.allclose(s[b], s_alone[0], atol=1e-12)


@pytest.mark.parametrize("name,engine", [(name, engine) for name in ("lstm-vanilla", "lstm-peephole", "gru", "rnn")
                                         for engine in ("auto", "fused", "reference", "native")
                                         if not (name == "lstm-peephole" and engine == "native")])
def test_nan_at_masked_steps_reaches_no_output_and_no_gradient(name, engine):
    # missing values left as NaN but masked: every path must skip them, in the backward too
    # (the torch paths compute the step and drop it, and 0 * NaN is NaN)
    layer = randomize(LAYERS[name](return_sequences=True, engine=engine).double())
    x = torch.randn(3, 6, 3, dtype=torch.double)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[0, 4:] = False  # right-padding only, which engine="native" also runs
    mask[2, 5] = False
    clean = x.masked_fill(~mask[:, :, None], 0.0).requires_grad_()
    holes = x.masked_fill(~mask[:, :, None], float("nan")).requires_grad_()
    grads = []
    for inp in (clean, holes):
        layer.zero_grad()
        y = layer(inp, mask=mask)
        (y * torch.linspace(-1, 1, y.shape[-1], dtype=torch.double)).sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
        assert torch.isfinite(y).all()
    assert torch.equal(layer(holes.detach(), mask=mask), layer(clean.detach(), mask=mask))
    for g_clean, g_holes in zip(*grads):
        assert torch.allclose(g_clean, g_holes, atol=1e-12)
    assert torch.isfinite(holes.grad).all() and torch.all(holes.grad[~mask] == 0)


def test_lengths_equal_the_prefix_mask():
    layer = randomize(LSTM(4, input_size=3, return_sequences=True).double())
    x = torch.randn(2, 5, 3, dtype=torch.double)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(layer(x, lengths=torch.tensor([5, 2])), layer(x, mask=mask))


@pytest.mark.parametrize("name", ["lstm-vanilla", "lstm-fgr", "gru", "rnn"])
def test_stateful_halves_equal_one_call_and_reset_restores_zeros(name):
    whole = randomize(LAYERS[name](return_sequences=True).double())
    stateful = LAYERS[name](return_sequences=True, stateful=True).double()
    stateful.load_state_dict(whole.state_dict())
    x = torch.randn(2, 8, 3, dtype=torch.double)
    y = whole(x)
    y1, y2 = stateful(x[:, :4]), stateful(x[:, 4:])
    assert torch.allclose(torch.cat([y1, y2], 1), y, atol=1e-12)
    stateful.reset_states()
    assert stateful.states is None
    assert torch.allclose(stateful(x[:, :4]), y[:, :4], atol=1e-12)


def test_stateful_state_is_detached_and_settable():
    layer = LSTM(4, input_size=3, stateful=True)
    layer(torch.randn(2, 5, 3))
    h, c = layer.states
    assert not h.requires_grad and h.shape == (2, 4)
    layer.states = (torch.zeros(2, 4), torch.ones(2, 4))
    assert torch.equal(layer.states[1], torch.ones(2, 4))


def test_initial_state_is_used():
    layer = randomize(LSTM(4, input_size=3, return_state=True).double())
    x = torch.randn(2, 5, 3, dtype=torch.double)
    h0, c0 = torch.randn(2, 4, dtype=torch.double), torch.randn(2, 4, dtype=torch.double)
    _, h, c = layer(x, initial_state=(h0, c0))
    state = (h0, c0)
    for t in range(5):
        _, state = layer.cell(x[:, t], state)
    assert torch.allclose(h, state[0], atol=1e-12) and torch.allclose(c, state[1], atol=1e-12)


def test_go_backwards_reads_reversed_and_bidirectional_realigns():
    fwd = randomize(LSTM(4, input_size=3, return_sequences=True).double())
    bwd = LSTM(4, input_size=3, return_sequences=True, go_backwards=True).double()
    bwd.load_state_dict(fwd.state_dict())
    x = torch.randn(2, 6, 3, dtype=torch.double)
    assert torch.allclose(bwd(x), fwd(x.flip(1)), atol=1e-12)
    bi = Bidirectional(fwd, merge_mode=None, backward_layer=bwd)
    y_f, y_b = bi(x)
    assert torch.allclose(y_b, fwd(x.flip(1)).flip(1), atol=1e-12)
    for mode, expected in (("sum", y_f + y_b), ("mul", y_f * y_b), ("ave", (y_f + y_b) / 2),
                           ("concat", torch.cat([y_f, y_b], -1))):
        bi.merge_mode = mode
        assert torch.allclose(bi(x), expected, atol=1e-12)


def test_dropout_is_one_mask_per_sequence_and_off_in_eval():
    layer = randomize(LSTM(6, input_size=3, return_sequences=True, recurrent_dropout=0.5, dropout=0.5).double())
    x = torch.randn(4, 5, 3, dtype=torch.double)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    torch.manual_seed(0)
    a = layer(x)
    torch.manual_seed(0)
    b = layer(x)
    assert torch.equal(a, b) and not torch.allclose(a, layer(x))
    assert layer.engine_in_use == "fused"
    # input dropout: a feature dropped at one step is dropped at every step of that sequence
    seen = []
    orig = layer.cell.forward
    layer.engine = "reference"
    layer.cell.forward = lambda x_t, s, r=None: (seen.append(x_t.clone()), orig(x_t, s, r))[1]
    layer(torch.ones(4, 5, 3, dtype=torch.double))
    zeros = [(s == 0) for s in seen]
    assert all(torch.equal(z, zeros[0]) for z in zeros) and zeros[0].any()


@pytest.mark.parametrize("name", list(LAYERS))
def test_config_round_trip_is_json_and_rebuilds_the_same_function(name):
    layer = randomize(LAYERS[name](return_sequences=True).double())
    spec = json.loads(json.dumps(serialize(layer)))
    clone = deserialize(spec).double()
    clone.load_state_dict(layer.state_dict())
    x = torch.randn(2, 4, 3, dtype=torch.double)
    assert torch.equal(layer(x), clone(x))
    assert clone.get_config() == layer.get_config()


def test_bidirectional_config_round_trip():
    bi = Bidirectional(GRU(4, input_size=3, return_sequences=True), merge_mode="ave")
    clone = deserialize(json.loads(json.dumps(serialize(bi))))
    clone.load_state_dict(bi.state_dict())
    x = torch.randn(2, 4, 3)
    assert torch.equal(bi(x), clone(x))


def test_input_size_is_inferred_on_first_call():
    layer = LSTM(4)
    assert not layer.built
    layer(torch.zeros(1, 2, 7, dtype=torch.float64))
    assert layer.built and layer.input_size == 7 and layer.cell.weight_ih.dtype == torch.float64


def test_projection_shapes():
    y, h, c = LSTM(8, proj_size=3, return_sequences=True, return_state=True)(torch.zeros(2, 5, 4))
    assert y.shape == (2, 5, 3) and h.shape == (2, 3) and c.shape == (2, 8)


def test_numpy_input_is_accepted():
    assert LSTM(3, input_size=2)(np.zeros((1, 4, 2), dtype=np.float32)).shape == (1, 3)


# -- bad input ------------------------------------------------------------------------------------

def test_wrong_rank():
    with pytest.raises(ValueError, match=r"LSTM: expected input of shape \(batch, time, 3\), got a 2-D tensor "
                                         r"of shape \(4, 3\)\. For one sequence use x\[None\]"):
        LSTM(5, input_size=3)(torch.zeros(4, 3))


def test_wrong_feature_count():
    with pytest.raises(ValueError, match=r"^LSTM: expected input of shape \(batch, time, 8\), got \(32, 10, 7\)\.$"):
        LSTM(5, input_size=8)(torch.zeros(32, 10, 7))


def test_unknown_variant():
    with pytest.raises(ValueError, match=r"LSTM: unknown `variant` 'peepholes'\. Expected one of: vanilla, lstm1997, "):
        LSTM(5, variant="peepholes")


@pytest.mark.parametrize("units, error, message", [
    (-3, ValueError, r"LSTM: `units` must be >= 1, got -3\."),
    (0, ValueError, r"LSTM: `units` must be >= 1, got 0\."),
    (2.5, TypeError, r"LSTM: `units` must be an integer, got 2\.5 \(float\)\."),
])
def test_bad_units(units, error, message):
    with pytest.raises(error, match=message):
        LSTM(units)


@pytest.mark.parametrize("make, name, value", [
    (lambda: LSTM(8, input_size=3), "units", 4),
    (lambda: LSTM(8, input_size=3), "input_size", 5),
    (lambda: LSTM(8, input_size=3), "variant", "peephole"),
    (lambda: LSTM(8, input_size=3), "proj_size", 2),
    (lambda: GRU(8, input_size=3), "reset_after", False),
    (lambda: SimpleRNN(8, input_size=3), "nonlinearity", "relu"),
])
def test_a_setting_the_weights_were_made_for_is_fixed_once_built(make, name, value):
    # before: `units` changed after the build reached the inference shortcut's loop bounds, which
    # read an 8-unit cell's weights as 4 units and returned a (2, 4) output without a word
    layer = make().eval()
    x = torch.randn(2, 1, 3)
    with torch.no_grad():
        want = layer(x)
    with pytest.raises(AttributeError, match=rf"`{name}` is fixed once the layer is built .*make a new layer"):
        setattr(layer, name, value)
    with torch.no_grad():
        assert torch.equal(layer(x), want)
    before = getattr(layer, name)
    setattr(layer, name, np.int64(before) if isinstance(before, int) and not isinstance(before, bool) else before)
    assert type(getattr(layer, name)) is type(before)  # the same value again is no change
    with pytest.raises(AttributeError, match=rf"`{name}` is fixed once the layer is built; it cannot be deleted"):
        delattr(layer, name)
    fresh = make().__class__(8)  # not built yet: anything goes
    setattr(fresh, name, value)
    assert getattr(fresh, name) == value or getattr(fresh, name).name == value


def test_mask_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"LSTM: `mask` must have shape \(batch, time\) = \(2, 5\), got \(2, 4\)\."):
        LSTM(3, input_size=2)(torch.zeros(2, 5, 2), mask=torch.ones(2, 4, dtype=torch.bool))


def test_nan_in_initial_state():
    h = torch.zeros(2, 3)
    h[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"LSTM: `initial_state` h contains 1 NaN or infinite values\."):
        LSTM(3, input_size=2)(torch.zeros(2, 5, 2), initial_state=(h, torch.zeros(2, 3)))


def test_initial_state_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"LSTM: `initial_state` c must have shape \(2, 3\), got \(2, 4\)\."):
        LSTM(3, input_size=2)(torch.zeros(2, 5, 2), initial_state=(torch.zeros(2, 3), torch.zeros(2, 4)))
    with pytest.raises(ValueError, match=r"LSTM: `initial_state` must be a tuple \(h, c\) of tensors"):
        LSTM(3, input_size=2)(torch.zeros(2, 5, 2), initial_state=(torch.zeros(2, 3),))


def test_dtype_mismatch_says_how_to_fix():
    with pytest.raises(TypeError, match=r"LSTM: input dtype torch.float64 does not match the layer's weights "
                                        r"\(torch.float32\)\. Convert the input"):
        LSTM(3, input_size=2)(torch.zeros(1, 2, 2, dtype=torch.float64))


def test_stateful_batch_change_is_refused():
    layer = LSTM(3, input_size=2, stateful=True)
    layer(torch.zeros(4, 5, 2))
    with pytest.raises(ValueError, match=r"carries a state for batch size 4, but the input has batch size 3"):
        layer(torch.zeros(3, 5, 2))


def test_bad_dropout_and_proj_and_engine():
    with pytest.raises(ValueError, match=r"GRU: `recurrent_dropout` must be in \[0\.0, 1\.0\), got 1\.0\."):
        GRU(3, recurrent_dropout=1.0)
    with pytest.raises(ValueError, match=r"LSTM: `proj_size` must be smaller than `units` \(4\), got 4\."):
        LSTM(4, proj_size=4)
    with pytest.raises(ValueError, match=r"LSTM: engine='native' cannot run this layer: variant 'layernorm'"):
        LSTM(4, variant="layernorm", engine="native")(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match=r"SimpleRNN: unknown `nonlinearity` 'sigmoid'\. Expected one of: 'tanh', 'relu'\."):
        SimpleRNN(4, nonlinearity="sigmoid")


def test_empty_input():
    with pytest.raises(ValueError, match=r"LSTM: the input is empty: shape \(2, 0, 3\)"):
        LSTM(4)(torch.zeros(2, 0, 3))
