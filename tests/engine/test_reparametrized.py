"""A weight recomputed from others (torch.nn.utils.prune, parametrize, spectral_norm,
weight_norm) reaches every path as the reference loop sees it, also after its underlying
parameters change (an optimizer step), with the same gradients; other hooks on the cell's call
run step by step (reference), and a path that never calls the cell refuses them."""

import contextlib
import warnings

import pytest
import torch
from torch.nn.utils import parametrize, prune
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from lstmkit.cells import GRUCell, LSTMCell, RNNCell
from lstmkit.engine import cell_hooks, run
from tests.helpers import max_diff, randomize, weighted_sum

B, T, I, H = 3, 5, 4, 6

CELLS = {
    "lstm": (lambda: LSTMCell(I, H), True),
    "lstm-peephole": (lambda: LSTMCell(I, H, variant="peephole"), False),
    "lstm-layernorm-proj": (lambda: LSTMCell(I, H, variant="layernorm", proj_size=3), False),
    "gru": (lambda: GRUCell(I, H), True),
    "rnn": (lambda: RNNCell(I, H), True),
}


class Scaled(torch.nn.Module):
    def forward(self, w):
        return 0.5 * w


def _old_spectral_norm(cell, name):
    return torch.nn.utils.spectral_norm(cell, name)


def _old_weight_norm(cell, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated in favour of parametrizations
        return torch.nn.utils.weight_norm(cell, name)


REPARAMETRIZE = {
    "prune": lambda cell, name: prune.l1_unstructured(cell, name, amount=0.5),
    "parametrize": lambda cell, name: parametrize.register_parametrization(cell, name, Scaled()),
    "spectral_norm": lambda cell, name: spectral_norm(cell, name),
    "weight_norm": lambda cell, name: weight_norm(cell, name),
    "spectral_norm-hook": _old_spectral_norm,
    "weight_norm-hook": _old_weight_norm,
}


def _outputs_and_grads(cell, engine, x, state):
    y, final = run(cell, x, state, engine=engine)
    grads = torch.autograd.grad(weighted_sum([y, *final]), [x, *state, *cell.parameters()])
    return [y, *final], grads


@pytest.mark.parametrize("how", list(REPARAMETRIZE))
@pytest.mark.parametrize("name", list(CELLS))
def test_a_recomputed_weight_reaches_every_path_after_its_parameters_change(name, how):
    make, has_native = CELLS[name]
    torch.manual_seed(0)  # spectral_norm starts its power iteration from random vectors
    cell = randomize(make().double()).eval()  # eval: spectral_norm's power iteration stands still
    REPARAMETRIZE[how](cell, "weight_hh")
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(B, T, I, generator=gen, dtype=torch.double, requires_grad=True)
    state = tuple(torch.randn(s.shape, generator=gen, dtype=torch.double).requires_grad_()
                  for s in cell.initial_state(B))
    engines = ["auto", "fused", *(["native"] if has_native else [])]
    for _ in range(2):
        # an optimizer step on the parameters the weight is made from (weight_hh_orig, the
        # parametrization's original, weight_hh_g and _v): every path must see the new weight
        with torch.no_grad():
            for p in cell.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        want_out, want_grads = _outputs_and_grads(cell, "reference", x, state)
        scale = max(1.0, *(float(g.abs().max()) for g in want_grads))  # a small sigma makes them large
        for engine in engines:
            out, grads = _outputs_and_grads(cell, engine, x, state)
            assert max_diff(out, want_out) < 1e-10, engine
            assert max_diff(grads, want_grads) < 1e-10 * scale, engine


def test_other_hooks_on_the_cell_run_step_by_step_and_the_paths_that_skip_the_cell_refuse_them():
    cell = LSTMCell(I, H).double()
    seen = []
    handle = cell.register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    x = torch.randn(B, T, I, dtype=torch.double)
    assert cell_hooks(cell) == "steps"
    y, _ = run(cell, x, None, engine="auto")  # auto: the reference loop, which calls the cell
    assert seen == [(B, I)] * T
    for engine in ("native", "fused"):
        with pytest.raises(ValueError, match=rf"engine='{engine}' never calls the cell.*engine='reference'"):
            run(cell, x, None, engine=engine)
    handle.remove()
    assert cell_hooks(cell) is None
    assert max_diff([run(cell, x, None, engine="auto")[0]], [y]) < 1e-12
    cell.register_forward_pre_hook(lambda module, args: None)  # not a weight's recomputation
    assert cell_hooks(cell) == "steps"
    prune_cell = LSTMCell(I, H)
    prune.random_unstructured(prune_cell, "weight_ih", amount=0.3)
    assert cell_hooks(prune_cell) == "weights"


def test_a_pruned_layer_trains_through_the_fast_paths():
    # the layers: the stream shortcut steps aside, the engine path recomputes the pruned weight
    from lstmkit.layers import GRU, LSTM

    for layer in (LSTM(6, input_size=4, return_sequences=True), GRU(6, input_size=4, return_sequences=True),
                  LSTM(6, input_size=4, variant="peephole", engine="fused")):
        torch.manual_seed(0)
        x = torch.randn(2, 7, 4)
        layer(x)
        prune.l1_unstructured(layer.cell, "weight_hh", amount=0.5)
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
        for _ in range(2):
            optimizer.zero_grad()
            layer(x).square().sum().backward()
            optimizer.step()
        fast = layer(x)
        assert layer.engine_in_use != "reference"
        layer.engine = "reference"
        assert max_diff([fast], [layer(x)]) < 1e-5
        with torch.no_grad():
            layer.engine = "auto"
            assert max_diff([layer(x)], [fast]) < 1e-5


@pytest.mark.parametrize("how", list(REPARAMETRIZE))
def test_in_training_each_path_makes_the_weight_once_a_call(how):
    # spectral_norm's power iteration runs when the weight is made, in training: once per layer
    # call on every path (the reference loop calls the cell every step, which runs the hooks; a
    # parametrized weight, made on every read, once under parametrize.cached as torch advises),
    # so the paths agree, and so do the power iteration's vectors after
    from lstmkit.layers import LSTM

    def make(engine):  # the same layer each time (prune's weight is no leaf: no deepcopy)
        torch.manual_seed(0)
        layer = LSTM(5, input_size=4, return_sequences=True, engine=engine).double()
        REPARAMETRIZE[how](layer.cell, "weight_hh")
        with torch.no_grad():
            for p in layer.cell.parameters():
                p.add_(0.3 * torch.randn_like(p))  # away from where the reparametrization started
        return layer

    x = torch.randn(2, 9, 4, dtype=torch.double)
    # torch makes a parametrized weight on every read, unless the caller asks for it once
    once = parametrize.cached if how in ("parametrize", "spectral_norm", "weight_norm") else contextlib.nullcontext
    results = {}
    for engine in ("reference", "auto", "fused", "native"):
        layer = make(engine)
        with once():
            y = layer(x)
        grads = torch.autograd.grad(weighted_sum([y]), list(layer.cell.parameters()))
        results[engine] = [y, *grads, *layer.cell.buffers()]  # the buffers: spectral_norm's u (and v)
    for engine in ("auto", "fused", "native"):
        assert max_diff(results[engine], results["reference"]) < 1e-10, engine


def test_a_hook_that_only_watches_does_not_change_a_parametrized_weight():
    # a forward hook sends the layer through the reference loop; under parametrize.cached the
    # parametrized weight is still made once a call there: the same numbers with the hook as without
    import copy

    from lstmkit.layers import LSTM

    torch.manual_seed(0)
    layer = LSTM(5, input_size=4).double()
    spectral_norm(layer.cell, "weight_hh")
    with torch.no_grad():
        layer.cell.parametrizations.weight_hh.original.normal_()
    watched = copy.deepcopy(layer)
    watched.cell.register_forward_hook(lambda module, args, out: None)
    x = torch.randn(2, 20, 4, dtype=torch.double)
    with parametrize.cached():  # the weight made once a call, as torch advises
        y, y_watched = layer(x), watched(x)
    assert watched.engine_in_use == "reference" and layer.engine_in_use != "reference"
    assert max_diff([y], [y_watched]) < 1e-10


@pytest.mark.parametrize("engine", ["auto", "native", "fused", "reference"])
def test_a_parametrized_weight_is_made_once_a_call_under_cached_and_the_cache_is_left_to_the_caller(engine):
    # torch's parametrize.cached() is one cache for the whole process: switched on inside a layer
    # call it froze other threads' parametrized weights (a review measured 47,370 stale reads of
    # 49,359) and broke torch.jit.trace. So lstmkit never switches it on; under the caller's,
    # every path reads each weight once.
    from lstmkit.layers import LSTM

    class Counted(torch.nn.Module):
        cache_seen = []

        def forward(self, w):
            Counted.cache_seen.append(parametrize._cache_enabled)
            return w

    layer = LSTM(5, input_size=4, engine=engine)
    layer(torch.randn(2, 6, 4))
    for name in ("weight_ih", "weight_hh"):
        parametrize.register_parametrization(layer.cell, name, Counted())
    Counted.cache_seen = []
    layer(torch.randn(2, 6, 4)).sum().backward()
    assert Counted.cache_seen and not any(Counted.cache_seen)
    Counted.cache_seen = []
    with parametrize.cached():
        layer(torch.randn(2, 6, 4)).sum().backward()
    assert len(Counted.cache_seen) == 2  # one for each weight


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_a_parametrized_layer_can_be_traced():
    from lstmkit.layers import LSTM

    layer = LSTM(6, input_size=3, return_sequences=True)
    x = torch.randn(2, 5, 3)
    layer(x)
    spectral_norm(layer.cell, "weight_hh")
    layer.eval()
    traced = torch.jit.trace(layer, (x,), check_trace=False)
    assert max_diff([traced(x)], [layer(x)]) < 1e-6


@pytest.mark.parametrize("engine", ["auto", "fused", "reference"])
def test_a_pruned_layer_converted_to_float64_runs_in_float64(engine):
    # before: the input's dtype check read the pruned weight as made before .double() (float32)
    # and told the user to convert the layer, which they just had
    from lstmkit.layers import LSTM

    layer = LSTM(5, input_size=4, engine=engine)
    layer(torch.randn(2, 5, 4))
    prune.l1_unstructured(layer.cell, "weight_ih", amount=0.5)
    layer.double()
    assert layer(torch.randn(2, 5, 4, dtype=torch.double)).dtype == torch.double
    with pytest.raises(TypeError, match=r"input dtype torch.float32 does not match the layer's weights \(torch.float64\)"):
        layer(torch.randn(2, 5, 4))
