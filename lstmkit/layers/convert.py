"""Conversion to and from ``torch.nn.LSTM`` / ``GRU`` / ``RNN``.

The parameters already share torch's names and layout (``weight_ih (4H, I)``, gate order
i, f, g, o), so conversion is a copy. A torch module with ``num_layers > 1`` becomes a list of
layers (each ``return_sequences=True``, as torch returns every step), a bidirectional one a
``Bidirectional`` per layer.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from lstmkit.engine.native import native_unsupported_reason
from lstmkit.layers.bidirectional import Bidirectional
from lstmkit.layers.recurrent import GRU, LSTM, Recurrent, SimpleRNN

log = logging.getLogger(__name__)

_KINDS = (LSTM, GRU, SimpleRNN)


def from_torch(module: nn.RNNBase, **options):
    """lstmkit layers computing what ``module`` computes, with its weights copied.

    Returns one layer (``num_layers == 1``), a ``Bidirectional`` (bidirectional, one layer), or a
    list of them (stacked). ``options`` (e.g. ``stateful=True``) go to every layer. torch's
    ``dropout`` between layers is not carried over (add ``Dropout`` layers); a module without
    biases converts with zero biases. lstmkit layers are batch-first whatever ``module.batch_first``.

    >>> layers = from_torch(nn.LSTM(3, 8, num_layers=2))
    >>> [type(layer).__name__ for layer in layers]
    ['LSTM', 'LSTM']
    """
    kind = next((ours for ours in _KINDS if type(module) is ours.torch_class), None)
    if kind is None:
        raise TypeError(f"from_torch: expected torch.nn.LSTM, GRU or RNN, got {type(module).__name__}.")
    if module.dropout:
        log.warning("from_torch: the module's dropout=%s between layers is not carried over.", module.dropout)
    extra = {}
    if kind is LSTM:
        extra["proj_size"] = module.proj_size
    elif kind is SimpleRNN:
        extra["nonlinearity"] = module.nonlinearity
    options = {"return_sequences": True, **options}
    layers = []
    input_size = module.input_size
    directions = 2 if module.bidirectional else 1
    for k in range(module.num_layers):
        pair = []
        for d in range(directions):
            layer = kind(module.hidden_size, input_size=input_size, go_backwards=bool(d), **extra, **options)
            layer.to(dtype=module.weight_ih_l0.dtype, device=module.weight_ih_l0.device)
            _copy_in(layer, module, f"_l{k}{'_reverse' if d else ''}")
            pair.append(layer)
        layers.append(Bidirectional(pair[0], backward_layer=pair[1]) if directions == 2 else pair[0])
        input_size = layers[-1].output_size
    return layers[0] if len(layers) == 1 else layers


def _copy_in(layer: Recurrent, module: nn.RNNBase, suffix: str) -> None:
    cell = layer.cell
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
            if not hasattr(cell, name):
                continue
            source = getattr(module, name + suffix, None)
            target = getattr(cell, name)
            if source is None:  # bias=False
                target.zero_()
            else:
                target.copy_(source)


def to_torch(layers) -> nn.RNNBase:
    """A batch-first ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` computing what ``layers`` compute.

    ``layers``: one recurrent layer, a ``Bidirectional``, or a list of them stacked. Raises
    ``ValueError`` for configurations torch cannot compute (variants other than vanilla, GRU with
    ``reset_after=False``, layers of different kinds or sizes).
    """
    stack = list(layers) if isinstance(layers, (list, tuple)) else [layers]
    if not stack:
        raise ValueError("to_torch: `layers` is empty.")
    bidirectional = isinstance(stack[0], Bidirectional)
    directions = []
    for k, layer in enumerate(stack):
        if isinstance(layer, Bidirectional) != bidirectional:
            raise ValueError("to_torch: mix of Bidirectional and one-directional layers; torch cannot stack them.")
        pair = [layer.forward_layer, layer.backward_layer] if bidirectional else [layer]
        for d, sub in enumerate(pair):
            if not sub.built:
                raise ValueError(f"to_torch: layer {k} has no weights yet; call it on an input or pass input_size.")
            reason = native_unsupported_reason(sub.cell, None, None)
            if reason is not None:
                raise ValueError(f"to_torch: layer {k} ({type(sub).__name__}) cannot be expressed in torch: {reason}.")
            if sub.go_backwards != bool(d):
                raise ValueError(f"to_torch: layer {k} reads the sequence backwards; torch.nn modules read forwards "
                                 "(use Bidirectional for both directions).")
        directions.append(pair)
    first = directions[0][0]
    kind = type(first)
    hidden = first.units
    for k, pair in enumerate(directions):
        for sub in pair:
            if type(sub) is not kind or sub.units != hidden or getattr(sub, "proj_size", 0) != getattr(first, "proj_size", 0):
                raise ValueError(f"to_torch: layer {k} differs in kind or size from layer 0; torch stacks equal layers.")
    options = dict(num_layers=len(stack), batch_first=True, bidirectional=bidirectional)
    if kind is LSTM:
        module = nn.LSTM(first.input_size, hidden, proj_size=first.proj_size, **options)
    elif kind is GRU:
        module = nn.GRU(first.input_size, hidden, **options)
    else:
        module = nn.RNN(first.input_size, hidden, nonlinearity=first.nonlinearity, **options)
    module.to(dtype=first.cell.weight_ih.dtype, device=first.cell.weight_ih.device)
    with torch.no_grad():
        for k, pair in enumerate(directions):
            for d, sub in enumerate(pair):
                suffix = f"_l{k}{'_reverse' if d else ''}"
                for name, p in sub.cell.named_parameters():
                    getattr(module, name + suffix).copy_(p)
    return module
