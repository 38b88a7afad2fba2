"""Each LSTM variant checked against its equations, computed independently in NumPy.

The NumPy code below is written from the papers (Greff et al. 2015 Sec. 2-3; Ba et al. 2016;
Cho et al. 2014), not from lstmkit's step function, and uses lstmkit only for the weights.
"""

import numpy as np
import pytest
import torch

from lstmkit.cells import VARIANTS, GRUCell, LSTMCell, RNNCell
from tests.helpers import randomize


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def ln(z, gain, bias=0.0, eps=1e-5):
    mu = z.mean(-1, keepdims=True)
    var = ((z - mu) ** 2).mean(-1, keepdims=True)
    return (z - mu) / np.sqrt(var + eps) * gain + bias


def numpy_lstm(name, W, xs, H):
    """Run the named variant over xs (T, B, I) with weights W (a dict of arrays)."""
    B = xs.shape[1]
    h = np.zeros((B, W["weight_hh"].shape[1]))
    c = np.zeros((B, H))
    prev_ifo = np.zeros((B, 3 * H))
    peep = name in ("peephole", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr")
    gates = {"nig": "fgo", "nfg": "igo", "nog": "ifg", "cifg": "igo", "lstm1997": "igo"}.get(name, "ifgo")
    hs = []
    for x in xs:
        zx = x @ W["weight_ih"].T
        zh = h @ W["weight_hh"].T
        if name == "layernorm":
            z = ln(zx, W["ln_ih_weight"]) + ln(zh, W["ln_hh_weight"]) + W["bias_ih"] + W["bias_hh"]
        else:
            z = zx + zh + W["bias_ih"] + W["bias_hh"]
        blocks = {g: z[:, k * H:(k + 1) * H] for k, g in enumerate(gates)}
        if name == "fgr":
            rec = prev_ifo @ W["weight_gr"].T
            for k, g in enumerate("ifo"):
                blocks[g] = blocks[g] + rec[:, k * H:(k + 1) * H]
        p = lambda g: W[f"weight_c{g}"] if peep and f"weight_c{g}" in W else 0.0  # noqa: E731
        i = sigmoid(blocks["i"] + p("i") * c) if "i" in gates else 1.0
        if name == "cifg":
            f = 1.0 - i
        elif "f" in gates:
            f = sigmoid(blocks["f"] + p("f") * c)
        else:
            f = 1.0
        g = blocks["g"] if name == "niaf" else np.tanh(blocks["g"])
        c = f * c + i * g
        o = sigmoid(blocks["o"] + p("o") * c) if "o" in gates else 1.0
        cc = ln(c, W["ln_c_weight"], W["ln_c_bias"]) if name == "layernorm" else c
        h = o * (cc if name == "noaf" else np.tanh(cc))
        if name == "fgr":
            prev_ifo = np.concatenate([i, f, o], axis=1)
        hs.append(h)
    return np.stack(hs)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_lstm_variant_matches_numpy_equations(name):
    H = 4
    cell = randomize(LSTMCell(3, H, variant=name).double(), seed=hash(name) % 1000)
    W = {n: p.detach().numpy() for n, p in cell.named_parameters()}
    xs = np.random.default_rng(0).normal(size=(6, 2, 3))
    expected = numpy_lstm(name, W, xs, H)
    state, got = None, []
    for x in torch.from_numpy(xs):
        h, state = cell(x, state)
        got.append(h.detach().numpy())
    np.testing.assert_allclose(np.stack(got), expected, rtol=0, atol=1e-12)


def test_variants_differ_only_where_the_paper_says():
    assert VARIANTS["np"].gates == VARIANTS["vanilla"].gates and not VARIANTS["np"].peepholes
    assert VARIANTS["lstm1997"].gates == ("i", "g", "o")
    assert VARIANTS["cifg"].gates == ("i", "g", "o") and VARIANTS["cifg"].forget_gate == "coupled"
    assert VARIANTS["nig"].peephole_gates == ("f", "o")
    assert LSTMCell(3, 4, variant="fgr").weight_gr.shape == (12, 12)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_matches_numpy_equations(reset_after):
    H = 4
    cell = randomize(GRUCell(3, H, reset_after=reset_after).double())
    W = {n: p.detach().numpy() for n, p in cell.named_parameters()}
    xs = np.random.default_rng(1).normal(size=(5, 2, 3))
    h = np.zeros((2, H))
    state = None
    for x in xs:
        gx = x @ W["weight_ih"].T + W["bias_ih"]
        Wr, Wz, Wn = np.split(W["weight_hh"], 3)
        br, bz, bn = np.split(W["bias_hh"], 3)
        r = sigmoid(gx[:, :H] + h @ Wr.T + br)
        z = sigmoid(gx[:, H:2 * H] + h @ Wz.T + bz)
        if reset_after:
            n = np.tanh(gx[:, 2 * H:] + r * (h @ Wn.T + bn))
        else:
            n = np.tanh(gx[:, 2 * H:] + (r * h) @ Wn.T + bn)
        h = (1 - z) * n + z * h
        got, state = cell(torch.from_numpy(x), state)
        np.testing.assert_allclose(got.detach().numpy(), h, atol=1e-12)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_elman_matches_numpy_equations(nonlinearity):
    cell = randomize(RNNCell(3, 4, nonlinearity=nonlinearity).double())
    W = {n: p.detach().numpy() for n, p in cell.named_parameters()}
    act = np.tanh if nonlinearity == "tanh" else (lambda z: np.maximum(z, 0))
    h, state = np.zeros((2, 4)), None
    for x in np.random.default_rng(2).normal(size=(5, 2, 3)):
        h = act(x @ W["weight_ih"].T + W["bias_ih"] + h @ W["weight_hh"].T + W["bias_hh"])
        got, state = cell(torch.from_numpy(x), state)
        np.testing.assert_allclose(got.detach().numpy(), h, atol=1e-12)


def test_forget_bias_starts_at_one_and_is_switchable():
    cell = LSTMCell(3, 4)
    total = (cell.bias_ih + cell.bias_hh).detach()
    assert torch.equal(total[4:8], torch.ones(4)) and torch.equal(total[:4], torch.zeros(4))
    off = LSTMCell(3, 4, unit_forget_bias=False)
    assert torch.equal((off.bias_ih + off.bias_hh).detach(), torch.zeros(16))
