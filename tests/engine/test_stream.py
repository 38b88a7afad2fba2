"""The compiled one-step path for streaming inference (lstmkit/engine/stream.py).

It must give the layer's function exactly: against the reference loop in float64, against
``torch.nn.LSTMCell`` in float32, across carried state, weight updates and dtype changes, and it
must step aside (to the ordinary engine) for anything it does not cover.
"""

import pytest
import torch

from lstmkit.engine import jit
from lstmkit.layers import LSTM
from tests.helpers import max_diff, randomize

pytestmark = pytest.mark.skipif(not jit.AVAILABLE, reason="numba is not installed")


def _pair(dtype=torch.float64, **options):
    fast = LSTM(7, input_size=3, stateful=True, **options).to(dtype)
    randomize(fast, seed=3)
    slow = LSTM(7, input_size=3, stateful=True, engine="reference", **options).to(dtype)
    slow.load_state_dict(fast.state_dict())
    return fast.eval(), slow.eval()


@pytest.mark.parametrize("return_sequences,return_state", [(False, False), (True, False), (True, True)])
def test_streaming_steps_match_the_reference_loop_in_float64(return_sequences, return_state):
    fast, slow = _pair(return_sequences=return_sequences, return_state=return_state)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(6):  # the carried state goes through the shortcut's own arrays
            x = torch.rand(4, 1, 3, generator=gen, dtype=torch.float64) * 4 - 2
            a, b = fast(x), slow(x)
            assert fast.engine_in_use == "fused" and slow.engine_in_use == "reference"
            a, b = (a, b) if return_state else ((a,), (b,))
            for u, v in zip(a, b):
                assert u.shape == v.shape and u.dtype == torch.float64
                assert max_diff(u, v) < 1e-12
        assert max_diff(fast.states[1], slow.states[1]) < 1e-12  # c, too


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
        peephole = LSTM(4, variant="peephole", input_size=3)
        peephole(torch.randn(2, 1, 3))
        assert peephole.engine_in_use == "reference"  # its own step, as before
        reference = LSTM(4, input_size=3, engine="reference")
        reference(torch.randn(2, 1, 3))
        assert reference.engine_in_use == "reference"
        with pytest.raises(ValueError, match="carries a state for batch size 8"):
            fast(torch.randn(3, 1, 3, dtype=torch.float64))
        with pytest.raises(TypeError, match="does not match the layer's weights"):
            fast(torch.randn(8, 1, 3))


# -- whole sequences at small batches ----------------------------------------------------------

@pytest.mark.parametrize("return_sequences,return_state", [(False, False), (True, False), (True, True)])
def test_sequences_match_the_reference_loop_in_float64(return_sequences, return_state):
    fast, slow = _pair(return_sequences=return_sequences, return_state=return_state)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for T in (2, 9, 30):  # the carried state goes from call to call, through the kernel's copies
            x = torch.rand(3, T, 3, generator=gen, dtype=torch.float64) * 4 - 2
            a, b = fast(x), slow(x)
            assert fast.engine_in_use == "fused" and slow.engine_in_use == "reference"
            a, b = (a, b) if return_state else ((a,), (b,))
            for u, v in zip(a, b):
                assert u.shape == v.shape and u.dtype == torch.float64
                assert max_diff(u, v) < 1e-12
        assert max_diff(fast.states[1], slow.states[1]) < 1e-12


def test_sequences_match_torch_lstm_and_see_in_place_updates():
    layer = randomize(LSTM(16, input_size=2, return_sequences=True), seed=5).eval()
    ref = torch.nn.LSTM(2, 16, batch_first=True)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(ref, f"{name}_l0").data.copy_(getattr(layer.cell, name))
    gen = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for step in range(4):
            if step == 2:  # the cached W_hh^T and bias sum are copies: they must be rebuilt
                for name in ("weight_hh", "bias_hh"):
                    getattr(layer.cell, name).mul_(0.5)
                    getattr(ref, f"{name}_l0").mul_(0.5)
            x = torch.randn(4, 12, 2, generator=gen)
            y = layer(x)
            assert layer.engine_in_use == "fused"
            assert max_diff(y, ref(x)[0]) < 1e-5
        layer.load_state_dict({k: torch.zeros_like(v) for k, v in layer.state_dict().items()})
        assert max_diff(layer(x), torch.zeros(4, 12, 16)) < 1e-6  # (exp approximated in the kernel)


def test_sequences_share_the_compiled_signature_of_the_fused_path():
    layer = LSTM(8, input_size=3, engine="fused").eval()
    x = torch.randn(16, 5, 3)  # batch 16: the fused path's own inference call
    with torch.no_grad():
        layer(x)
        assert layer.engine_in_use == "fused"
        compiled = len(jit.lstm_forward.signatures)
        layer(x[:2])  # the shortcut: no new compilation
        assert len(jit.lstm_forward.signatures) == compiled


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
