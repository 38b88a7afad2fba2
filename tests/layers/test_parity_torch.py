"""lstmkit layers compute exactly what torch.nn.LSTM / GRU / RNN compute: outputs, states, gradients."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.layers import GRU, LSTM, Bidirectional, SimpleRNN, from_torch, to_torch
from tests.helpers import randomize, weighted_sum

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
TORCH_MODULES = {
    "lstm": lambda **kw: nn.LSTM(4, 6, batch_first=True, **kw),
    "lstm-proj": lambda **kw: nn.LSTM(4, 6, batch_first=True, proj_size=3, **kw),
    "gru": lambda **kw: nn.GRU(4, 6, batch_first=True, **kw),
    "rnn-tanh": lambda **kw: nn.RNN(4, 6, batch_first=True, **kw),
    "rnn-relu": lambda **kw: nn.RNN(4, 6, batch_first=True, nonlinearity="relu", **kw),
}


def run_stack(layers, x, initial=None):
    """Run converted layers one after the other; collect the final states as torch lays them out."""
    layers = layers if isinstance(layers, list) else [layers]
    hs, cs = [], []
    for k, layer in enumerate(layers):
        for sub in ([layer.forward_layer, layer.backward_layer] if isinstance(layer, Bidirectional) else [layer]):
            sub.return_state = True
        if isinstance(layer, Bidirectional):
            layer.return_state = True
        init = None
        if initial is not None:
            d = 2 if isinstance(layer, Bidirectional) else 1
            init = tuple(s[k * d + j] for j in range(d) for s in initial)
            if isinstance(layer, Bidirectional) and len(initial) == 2:  # (h_f, c_f, h_b, c_b)
                init = (initial[0][2 * k], initial[1][2 * k], initial[0][2 * k + 1], initial[1][2 * k + 1])
        out = layer(x, initial_state=init)
        x, states = out[0], out[1:]
        per_dir = len(states) // (2 if isinstance(layer, Bidirectional) else 1)
        for j in range(0, len(states), per_dir):
            hs.append(states[j])
            if per_dir == 2:
                cs.append(states[j + 1])
    return x, torch.stack(hs), (torch.stack(cs) if cs else None)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", list(TORCH_MODULES))
@pytest.mark.parametrize("engine", ["auto", "fused"])
def test_parity_with_torch(kind, num_layers, bidirectional, dtype, engine):
    torch.manual_seed(0)
    theirs = randomize(TORCH_MODULES[kind](num_layers=num_layers, bidirectional=bidirectional).to(dtype))
    ours = from_torch(theirs, engine=engine)
    x = torch.randn(3, 7, 4, dtype=dtype, requires_grad=True)
    D = 2 if bidirectional else 1
    h_size = theirs.proj_size or 6 if kind.startswith("lstm") else 6
    h0 = torch.randn(num_layers * D, 3, h_size, dtype=dtype, requires_grad=True)
    c0 = torch.randn(num_layers * D, 3, 6, dtype=dtype, requires_grad=True)
    lstm = kind.startswith("lstm")
    y_t, final_t = theirs(x, (h0, c0) if lstm else h0)
    final_t = final_t if lstm else (final_t,)
    y_o, h_o, c_o = run_stack(ours, x, (h0, c0) if lstm else (h0,))
    final_o = (h_o, c_o) if lstm else (h_o,)
    tol = TOL[dtype]
    assert (y_o - y_t).abs().max() < tol
    for a, b in zip(final_o, final_t):
        assert (a - b).abs().max() < tol
    ours_list = ours if isinstance(ours, list) else [ours]
    ours_params = [p for layer in ours_list for p in layer.parameters()]
    g_t = torch.autograd.grad(weighted_sum([y_t, *final_t]), [x, h0, c0][: 3 if lstm else 2] + list(theirs.parameters()))
    g_o = torch.autograd.grad(weighted_sum([y_o, *final_o]), [x, h0, c0][: 3 if lstm else 2] + ours_params)
    for a, b in zip(g_o[: 3 if lstm else 2], g_t):
        assert (a - b).abs().max() < tol
    # parameters: same set, same values of the gradient (match by name)
    torch_grads = dict(zip([n for n, _ in theirs.named_parameters()], g_t[3 if lstm else 2:]))
    our_grads = {}
    for k, layer in enumerate(ours_list):
        subs = [layer.forward_layer, layer.backward_layer] if isinstance(layer, Bidirectional) else [layer]
        for d, sub in enumerate(subs):
            for n, _ in sub.cell.named_parameters():
                our_grads[f"{n}_l{k}{'_reverse' if d else ''}"] = None
    for (n, g) in zip(our_grads, g_o[3 if lstm else 2:]):
        assert (g - torch_grads[n]).abs().max() < tol, n


def test_masked_batch_matches_torch_packed_sequence():
    torch.manual_seed(1)
    theirs = randomize(nn.LSTM(4, 5, batch_first=True, bidirectional=True).double())
    ours = from_torch(theirs, engine="fused")
    x = torch.randn(3, 6, 4, dtype=torch.double)
    lengths = torch.tensor([6, 2, 4])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    y_t, (h_t, c_t) = theirs(packed)
    y_t, _ = pad_packed_sequence(y_t, batch_first=True, total_length=6)
    ours.return_state = ours.forward_layer.return_state = ours.backward_layer.return_state = True
    y_o, h_f, c_f, h_b, c_b = ours(x, lengths=lengths)
    assert (y_o - y_t).abs().max() < 1e-12
    assert (torch.stack([h_f, h_b]) - h_t).abs().max() < 1e-12
    assert (torch.stack([c_f, c_b]) - c_t).abs().max() < 1e-12


@pytest.mark.parametrize("make", [lambda: LSTM(5, input_size=4), lambda: LSTM(5, input_size=4, proj_size=2),
                                  lambda: GRU(5, input_size=4), lambda: SimpleRNN(5, input_size=4, nonlinearity="relu")])
def test_to_torch_round_trip(make):
    ours = randomize(make().double())
    theirs = to_torch(ours)
    x = torch.randn(2, 5, 4, dtype=torch.double)
    ours.return_sequences = True
    assert (ours(x) - theirs(x)[0]).abs().max() < 1e-12
    assert type(ours).from_torch(theirs).get_config()["units"] == 5


def test_to_torch_refuses_variants_torch_cannot_compute():
    with pytest.raises(ValueError, match=r"layer 0 \(LSTM\) cannot be expressed in torch: variant 'peephole'"):
        to_torch(LSTM(4, variant="peephole", input_size=3))
    with pytest.raises(TypeError, match="expected a torch.nn.LSTM, got GRU"):
        LSTM.from_torch(nn.GRU(3, 4))
