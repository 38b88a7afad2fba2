"""Export a trained ``Sequential`` model to ONNX or TorchScript, for serving without lstmkit.

``model.export("model.onnx")`` or ``model.export("model.pt")`` (TorchScript). The exported
function takes the input and, optionally, every recurrent layer's state, and returns the output
and every final state; so a stateful model streams by feeding each call's states to the next.

Shape:
    ``x (B, T, F)`` with B and T free (``(B, F)`` for models without a time axis); each state
    ``(B, S)``: ``h`` and ``c`` of an LSTM (FGR adds ``a``), ``h`` of a GRU or SimpleRNN, for
    a Bidirectional layer the forward layer's states then the backward layer's.

Names (ONNX inputs and outputs): ``x`` and ``y``; the states of layer k are ``layer{k}_h_in``,
``layer{k}_c_in`` ... and ``layer{k}_h_out`` ...; a Bidirectional layer's carry ``forward_`` or
``backward_`` after ``layer{k}_``. The state inputs are optional: left out, they start at zeros.

How the recurrence leaves lstmkit: the engine's fused path is a ``torch.autograd.Function`` that
neither tracer can see into, and a traced Python loop is fixed to one sequence length. So:

- vanilla LSTM (without ``proj_size``), GRU (``reset_after=True``) and SimpleRNN become
  ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` with the layer's weights: ONNX's own ``LSTM``, ``GRU``,
  ``RNN`` operators, any length;
- every other cell (peephole, CIFG, layer norm, ``reset_after=False``, projections, ...) runs
  the cell's own step function, traced once, inside a scripted loop over time: an ONNX ``Loop``.

>>> import os, tempfile, lstmkit
>>> from lstmkit.layers import LSTM, Dense
>>> model = lstmkit.Sequential([LSTM(4, variant="peephole"), Dense(1)], input_shape=(None, 2))
>>> path = model.export(os.path.join(tempfile.mkdtemp(), "model.pt"))
>>> import warnings
>>> with warnings.catch_warnings():  # torch >= 2.9 calls torch.jit deprecated
...     warnings.simplefilter("ignore", DeprecationWarning)
...     net = torch.jit.load(path)
>>> y, states = net(torch.zeros(3, 7, 2))
>>> tuple(y.shape), [tuple(s.shape) for s in states]
((3, 1), [(3, 4), (3, 4)])
"""


import contextlib
import copy
import logging
import os
import warnings
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from lstmkit._io import atomic_path
from lstmkit.cells import GRUCell, LSTMCell, RNNCell
from lstmkit.layers.bidirectional import Bidirectional
from lstmkit.layers.core import Embedding, Masking
from lstmkit.layers.recurrent import Recurrent

logger = logging.getLogger("lstmkit.models")

FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}
ONNX_OPSET = 17


class ExportError(ValueError):
    """The model (or one of its layers) cannot be written in the asked format."""


# ---------------------------------------------------------------------------------------------
# The exportable network: every piece takes ``(x, states)`` and returns ``(y, new states)``.

class _Plain(nn.Module):
    """A layer without state (Dense, Dropout, TimeDistributed, ...), traced on an example input."""

    n_states: int

    def __init__(self, traced: nn.Module):
        super().__init__()
        self.layer = traced
        self.n_states = 0

    def forward(self, x: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        empty: List[Tensor] = []
        return self.layer(x), empty


class _NativeLSTM(nn.Module):
    """A vanilla LSTM layer as ``torch.nn.LSTM`` (ONNX ``LSTM``)."""

    n_states: int
    go_backwards: bool
    return_sequences: bool

    def __init__(self, rnn: nn.LSTM, go_backwards: bool, return_sequences: bool):
        super().__init__()
        self.rnn = rnn
        self.n_states = 2
        self.go_backwards = go_backwards
        self.return_sequences = return_sequences

    def forward(self, x: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        if self.go_backwards:
            x = x.flip([1])
        y, (h, c) = self.rnn(x, (states[0].unsqueeze(0), states[1].unsqueeze(0)))
        h, c = h.squeeze(0), c.squeeze(0)
        return (y if self.return_sequences else h), [h, c]


class _NativeGRU(nn.Module):
    """A GRU (``reset_after=True``) or SimpleRNN layer as ``torch.nn.GRU`` / ``RNN``."""

    n_states: int
    go_backwards: bool
    return_sequences: bool

    def __init__(self, rnn: nn.Module, go_backwards: bool, return_sequences: bool):
        super().__init__()
        self.rnn = rnn
        self.n_states = 1
        self.go_backwards = go_backwards
        self.return_sequences = return_sequences

    def forward(self, x: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        if self.go_backwards:
            x = x.flip([1])
        y, h = self.rnn(x, states[0].unsqueeze(0))
        h = h.squeeze(0)
        return (y if self.return_sequences else h), [h]


class _PackedStep(nn.Module):
    """The cell's own step with its state packed into one tensor ``(B, sum of widths)``.

    Packing gives every cell the same signature, so one scripted loop drives them all.
    """

    def __init__(self, cell: nn.Module, widths: List[int]):
        super().__init__()
        self.cell = cell
        self.widths = widths

    def forward(self, x_t: Tensor, packed: Tensor) -> Tuple[Tensor, Tensor]:
        y, state = self.cell(x_t, tuple(packed.split(self.widths, dim=1)))
        return y, torch.cat(state, dim=1)


class _LoopCore(nn.Module):
    """The loop over time around a traced step, on the packed state; always scripted."""

    go_backwards: bool
    return_sequences: bool

    def __init__(self, step: nn.Module, go_backwards: bool, return_sequences: bool):
        super().__init__()
        self.step = step
        self.go_backwards = go_backwards
        self.return_sequences = return_sequences

    def forward(self, x: Tensor, packed: Tensor) -> Tuple[Tensor, Tensor]:
        if self.go_backwards:
            x = x.flip([1])
        ys: List[Tensor] = []
        for x_t in x.unbind(1):
            y_t, packed = self.step(x_t, packed)
            if self.return_sequences:
                ys.append(y_t)
        if self.return_sequences:
            return torch.stack(ys, dim=1), packed
        return packed, packed  # the caller takes h from the packed state


class _Loop(nn.Module):
    """Any cell over time: a scripted loop around its traced step (an ONNX ``Loop``)."""

    n_states: int
    go_backwards: bool
    return_sequences: bool
    widths: List[int]

    def __init__(self, step: nn.Module, widths: List[int], go_backwards: bool, return_sequences: bool):
        super().__init__()
        # Scripted on its own, so that tracing the whole network (for ONNX) keeps the loop.
        self.core = torch.jit.script(_LoopCore(step, go_backwards, return_sequences))
        self.widths = widths
        self.n_states = len(widths)
        self.go_backwards = go_backwards
        self.return_sequences = return_sequences

    def forward(self, x: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        y, packed = self.core(x, torch.cat(states, dim=1))
        final = list(packed.split(self.widths, dim=1))
        if not self.return_sequences:
            return final[0], final
        # The ONNX exporter infers the wrong rank for the loop's stacked outputs (and a native RNN
        # after it then crashes the exporter); a reshape states it.
        return y.reshape(x.shape[0], x.shape[1], -1), final


class _Bidirectional(nn.Module):
    """Both directions of a ``Bidirectional`` layer, merged."""

    n_states: int
    n_forward: int
    flip_forward: bool
    flip_backward: bool
    return_sequences: bool
    merge_mode: str

    def __init__(self, fwd: nn.Module, bwd: nn.Module, merge_mode: str, return_sequences: bool):
        super().__init__()
        self.fwd, self.bwd = fwd, bwd
        self.n_forward = fwd.n_states
        self.n_states = fwd.n_states + bwd.n_states
        self.flip_forward, self.flip_backward = fwd.go_backwards, bwd.go_backwards
        self.return_sequences = return_sequences
        self.merge_mode = merge_mode

    def forward(self, x: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        y_f, s_f = self.fwd(x, states[:self.n_forward])
        y_b, s_b = self.bwd(x, states[self.n_forward:])
        if self.return_sequences:  # back to the input's time order
            if self.flip_backward:
                y_b = y_b.flip([1])
            if self.flip_forward:
                y_f = y_f.flip([1])
        if self.merge_mode == "concat":
            y = torch.cat([y_f, y_b], dim=-1)
        elif self.merge_mode == "sum":
            y = y_f + y_b
        elif self.merge_mode == "mul":
            y = y_f * y_b
        else:
            y = (y_f + y_b) / 2
        return y, s_f + s_b


class ExportedNet(nn.Module):
    """``forward(x, states=None) -> (y, states)``: what ``model.export`` writes."""

    widths: List[int]

    def __init__(self, steps: List[nn.Module], widths: List[int], dtype: torch.dtype):
        super().__init__()
        self.steps = nn.ModuleList(steps)
        self.widths = widths
        self.register_buffer("_dtype_probe", torch.zeros(0, dtype=dtype), persistent=False)

    def forward(self, x: Tensor, states: Optional[List[Tensor]] = None) -> Tuple[Tensor, List[Tensor]]:
        if states is None:
            batch = x.size(0)
            states = [torch.zeros(batch, w, dtype=self._dtype_probe.dtype, device=x.device) for w in self.widths]
        out: List[Tensor] = []
        k = 0
        for step in self.steps:
            n = step.n_states
            x, new = step(x, states[k:k + n])
            out.extend(new)
            k += n
        return x, out


# ---------------------------------------------------------------------------------------------
# Building it from a Sequential

def _native_reason(layer: Recurrent) -> str | None:
    cell = layer.cell
    if isinstance(cell, LSTMCell):
        v = cell.variant
        if (v.gates != ("i", "f", "g", "o") or v.peepholes or v.layer_norm or v.gate_recurrence
                or v.input_activation != "tanh" or v.output_activation != "tanh"):
            return "variant"
        if cell.proj_size:
            return "projection"  # ONNX's LSTM operator has no projection
        return None
    if isinstance(cell, GRUCell):
        return None if cell.reset_after else "reset_after=False"
    if isinstance(cell, RNNCell):
        return None
    return "unknown cell"


def _native_module(layer: Recurrent) -> nn.Module:
    cell = layer.cell
    I, H = cell.input_size, cell.hidden_size
    if isinstance(cell, LSTMCell):
        rnn = nn.LSTM(I, H, batch_first=True)
    elif isinstance(cell, GRUCell):
        rnn = nn.GRU(I, H, batch_first=True)
    else:
        rnn = nn.RNN(I, H, nonlinearity=cell.nonlinearity, batch_first=True)
    rnn = rnn.to(dtype=cell.weight_ih.dtype)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(rnn, f"{name}_l0").copy_(getattr(cell, name))
    rnn.eval()
    cls = _NativeLSTM if isinstance(cell, LSTMCell) else _NativeGRU
    return cls(rnn, layer.go_backwards, layer.return_sequences)


@contextlib.contextmanager
def _static_layer_norm():
    """While tracing, the layer-norm cell normalises over a fixed width.

    ``lstmkit.cells.lstm.layer_norm`` reads the width from ``z.shape``, which a trace records as
    a run-time value, and ONNX's LayerNormalization needs it constant. The width never changes
    (it is H or a multiple of it), so the trace may take it as a number.
    """
    from lstmkit.cells import lstm as lstm_cells

    original = lstm_cells.layer_norm

    def fixed_width(z):
        return torch.nn.functional.layer_norm(z, (int(z.shape[-1]),), eps=lstm_cells.LN_EPS)

    lstm_cells.layer_norm = fixed_width
    try:
        yield
    finally:
        lstm_cells.layer_norm = original


def _recurrence(layer: Recurrent, where: str) -> tuple[nn.Module, list[str], list[int]]:
    if not layer.built:
        raise ExportError(f"export: {where} has no weights yet; call fit() or predict() first.")
    if layer.return_state:
        raise ExportError(f"export: {where} has return_state=True; its output is a tuple that a Sequential "
                          "cannot pass on. The exported model returns every final state anyway: set "
                          "return_state=False.")
    cell = layer.cell
    zeros = cell.initial_state(2)
    widths = [int(s.shape[1]) for s in zeros]
    names = list(layer.state_names) + ["a"] * (len(widths) - len(layer.state_names))
    if _native_reason(layer) is None:
        return _native_module(layer), names, widths
    step = _PackedStep(cell, widths).eval()
    x_t = torch.randn(2, cell.input_size, dtype=cell.weight_ih.dtype)
    packed = torch.randn(2, sum(widths), dtype=cell.weight_ih.dtype)
    with torch.no_grad(), warnings.catch_warnings(), _static_layer_norm():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(step, (x_t, packed))
    return _Loop(traced, widths, layer.go_backwards, layer.return_sequences), names, widths


def _input_spec(model) -> tuple[list, torch.dtype, bool]:
    """One sample's shape (the time entry None where free), its dtype, and whether it has a time axis."""
    from lstmkit.models.model import _DTYPES

    record = model._build_input
    if not record:
        raise ExportError("export: the model does not know its input shape; fit it, or give input_shape= "
                          "when defining it.")
    dtype = _DTYPES.get(record.get("dtype"), torch.float32)
    given = getattr(model, "input_shape", None)
    shape = list(given) if given is not None else list(record["shape"])
    has_time = len(shape) >= 2 or (len(shape) == 1 and not dtype.is_floating_point)
    return shape, dtype, has_time


def _example_input(model, batch: int, steps: int | None = None) -> torch.Tensor:
    """Random input of ``batch`` samples; ``steps`` replaces a free (or, if given, any) time length."""
    shape, dtype, has_time = _input_spec(model)
    if has_time and (shape[0] is None or steps is not None):
        shape[0] = steps if steps is not None else 3
    gen = torch.Generator().manual_seed(batch)
    if not dtype.is_floating_point:
        return torch.randint(0, 2, (batch, *shape), generator=gen)
    return torch.randn(batch, *shape, generator=gen, dtype=dtype)


def build_exported_net(model) -> tuple[ExportedNet, list[str], list[int]]:
    """The model as an :class:`ExportedNet`, with its state names and widths.

    Not scripted as a whole: ``torch.jit.script`` it for TorchScript, trace it for ONNX.
    """
    from lstmkit.models.sequential import Sequential

    if not isinstance(model, Sequential):
        raise ExportError(f"export: only Sequential models can be exported, got {type(model).__name__}. For a "
                          "Model wrapping your own module, export that module with torch.onnx.export or "
                          "torch.jit.script.")
    model._require_built("export")
    # A frozen copy: the exported file holds constants, and the model keeps training as it was.
    layers = copy.deepcopy(model.layers).eval().requires_grad_(False)
    for layer in layers:
        layer.reset_states()
    x = _example_input(model, 2)
    steps, names, widths = [], [], []
    with torch.no_grad():
        for k, layer in enumerate(layers):
            where = f"layer {k} ({type(layer).__name__})"
            if isinstance(layer, (Masking,)) or (isinstance(layer, Embedding) and layer.mask_zero):
                raise ExportError(f"export: {where} makes a mask, which the exported model does not carry. "
                                  "Export a model without masking (pad and crop outside it), or use Embedding "
                                  "with mask_zero=False.")
            if isinstance(layer, Bidirectional):
                if layer.merge_mode is None:
                    raise ExportError(f"export: {where} has merge_mode=None (a pair of outputs); choose "
                                      "'concat', 'sum', 'mul' or 'ave'.")
                fwd, f_names, f_widths = _recurrence(layer.forward_layer, where + " forward layer")
                bwd, b_names, b_widths = _recurrence(layer.backward_layer, where + " backward layer")
                step = _Bidirectional(fwd, bwd, layer.merge_mode, layer.return_sequences)
                names += [f"layer{k}_forward_{n}" for n in f_names] + [f"layer{k}_backward_{n}" for n in b_names]
                widths += f_widths + b_widths
            elif isinstance(layer, Recurrent):
                step, s_names, s_widths = _recurrence(layer, where)
                names += [f"layer{k}_{n}" for n in s_names]
                widths += s_widths
            else:
                if any(isinstance(m, (Recurrent, Bidirectional)) for m in layer.modules()):
                    raise ExportError(f"export: {where} holds a recurrent layer inside it; only recurrent "
                                      "layers placed directly in the Sequential can be exported.")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", torch.jit.TracerWarning)
                    step = _Plain(torch.jit.trace(layer, (x,)))
            x = layer(x)
            steps.append(step)
    dtype = next((p.dtype for p in layers.parameters() if p.is_floating_point()), torch.float32)
    return ExportedNet(steps, widths, dtype).eval().requires_grad_(False), names, widths


# ---------------------------------------------------------------------------------------------
# Writing files

def export_model(model, path: str | os.PathLike, *, opset: int = ONNX_OPSET) -> str:
    """Write ``model`` to ``path``; the suffix picks the format: ``.onnx``, or ``.pt`` for TorchScript."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        hint = (" torch.export (.pt2) fixes the loop over time to the traced length; use .pt (TorchScript), "
                "which keeps it." if suffix == ".pt2" else "")
        raise ValueError(f"export: unknown format {suffix or '(no suffix)'!r} in `path` {path!r}. Expected a "
                         f"path ending in one of: {', '.join(FORMATS)}.{hint}")
    with warnings.catch_warnings():
        # torch 2.9+ marks torch.jit deprecated in favour of torch.export, which cannot yet keep a
        # loop over a free sequence length; TorchScript is still what serves these models.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return _export(model, path, suffix, opset)


def _export(model, path, suffix, opset) -> str:
    net, names, widths = build_exported_net(model)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with atomic_path(path) as tmp:
        if FORMATS[suffix] == "onnx":
            _write_onnx(model, net, names, widths, tmp, opset)
        else:
            torch.jit.save(torch.jit.script(net), tmp)
    logger.info("export: wrote %s (%s, %d state tensors)", path, FORMATS[suffix], len(widths))
    return path


class _OnnxFacade(nn.Module):
    """Flat inputs and outputs for ONNX; a state given as ``(1, S)`` is broadcast to the batch."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x, *states):
        batch = x.shape[0]
        y, final = self.net(x, [s.expand(batch, -1) for s in states])
        return (y, *final)


def _dynamic_axes(model, net) -> tuple[dict, list]:
    """Which axes of the input and of the output follow the batch size and the sequence length.

    The time axis is free unless the network needs the length it was defined with (a Flatten
    after a sequence): found by running it at two batch sizes and lengths.
    """
    a = _example_input(model, 2)
    has_time = _input_spec(model)[2]
    with torch.no_grad():
        ya, _ = net(a)
        b = _example_input(model, 3, a.shape[1] + 2 if has_time else None)
        try:
            yb, _ = net(b)
        except RuntimeError:  # the length is fixed
            has_time = False
            b = _example_input(model, 3, a.shape[1] if a.dim() >= 2 else None)
            yb, _ = net(b)
    x_axes = {0: "batch", **({1: "time"} if has_time else {})}
    y_axes, y_dims = {}, []
    for axis, (da, db) in enumerate(zip(ya.shape, yb.shape)):
        if axis == 0:
            y_axes[axis] = "batch"
            y_dims.append("batch")
        elif da != db:
            y_axes[axis] = "time"
            y_dims.append("time")
        else:
            y_dims.append(int(da))
    return {"x": x_axes, "y": y_axes}, y_dims


def _write_onnx(model, net, names, widths, path, opset) -> None:
    try:
        import onnx
    except ImportError:
        raise ImportError("export: writing ONNX needs the `onnx` package: pip install 'lstmkit[export]'.") from None
    axes, y_dims = _dynamic_axes(model, net)
    inputs = ["x"] + [f"{n}_in" for n in names]
    outputs = ["y"] + [f"{n}_out" for n in names]
    for name in names:
        axes[f"{name}_in"] = {0: "batch"}
        axes[f"{name}_out"] = {0: "batch"}
    x = _example_input(model, 2)
    dtype = net._dtype_probe.dtype
    states = [torch.zeros(2, w, dtype=dtype) for w in widths]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Traced first: the ONNX exporter accepts a traced module that calls scripted ones, but
        # not a plain module that does.
        facade = torch.jit.trace(_OnnxFacade(net), (x, *states), check_trace=False)
        torch.onnx.export(facade, (x, *states), path, dynamo=False, input_names=inputs,
                          output_names=outputs, dynamic_axes=axes, opset_version=opset, do_constant_folding=True)
    proto = onnx.load(path)
    _tidy_onnx(proto, names, widths, y_dims, dtype)
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def _tidy_onnx(proto, names, widths, y_dims, dtype) -> None:
    """State inputs become optional (zeros by default), and output shapes are stated exactly."""
    import onnx
    from onnx import numpy_helper

    np_dtype = torch.zeros(0, dtype=dtype).numpy().dtype
    graph = proto.graph
    for name, width in zip(names, widths):
        default = numpy_helper.from_array(__import__("numpy").zeros((1, width), dtype=np_dtype), f"{name}_in")
        graph.initializer.append(default)
    # The TorchScript exporter guesses wrong ranks for values made inside a Loop; drop the guesses
    # (onnxruntime infers them) and state the outputs' shapes, known from running the model.
    del graph.value_info[:]
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                del attr.g.value_info[:]
                for out in attr.g.output:
                    kind = out.type.WhichOneof("value")
                    if kind == "tensor_type":
                        out.type.tensor_type.ClearField("shape")
                    elif kind == "sequence_type":
                        out.type.sequence_type.elem_type.tensor_type.ClearField("shape")
    for out in graph.output:
        shape = out.type.tensor_type.shape
        dims = y_dims if out.name == "y" else ["batch", widths[names.index(out.name[:-len("_out")])]]
        shape.ClearField("dim")
        for d in dims:
            dim = shape.dim.add()
            if isinstance(d, str):
                dim.dim_param = d
            else:
                dim.dim_value = d
