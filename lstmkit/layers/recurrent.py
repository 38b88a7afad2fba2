"""Recurrent layers: ``LSTM`` (every variant), ``GRU`` and ``SimpleRNN``.

A layer owns a cell (:mod:`lstmkit.cells`: the parameters and one step) and runs it over the
sequence through :mod:`lstmkit.engine`, which picks the fastest path that computes the same
function. Everything Keras users expect is here: ``return_sequences``, ``return_state``,
``initial_state``, ``stateful`` with ``reset_states()``, ``go_backwards``, input ``dropout`` and
variational ``recurrent_dropout``, masking of padded or missing steps.

Shape:
    B batch, T time steps, I input features, H ``units``, P = ``proj_size`` or H.
    Input ``x (B, T, I)``; output ``(B, T, P)`` with ``return_sequences``, else ``(B, P)``.
    ``mask (B, T)`` bool, True where a step is real; or ``lengths (B,)`` for right padding.
    A masked step leaves the state unchanged and outputs zeros, so a padded batch gives the
    same numbers as each unpadded sequence run alone.

The equivalent plain loop of ``LSTM(H, return_sequences=True)`` on ``x``::

    h, c = zeros(B, H), zeros(B, H)
    for t in range(T):
        h, (h, c) = layer.cell(x[:, t], (h, c))
        y[:, t] = h
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from lstmkit._validation import check_choice, check_float, check_int
from lstmkit.cells import GRUCell, LSTMCell, RNNCell
from lstmkit.cells.lstm import INITS
from lstmkit.cells.rnn import NONLINEARITIES
from lstmkit.cells.variants import LSTMVariant, get_variant
from lstmkit.engine import ENGINES, dispatch, makes_weights, select_engine, weights_made_once
from lstmkit.engine.fused import torch_ops_only
from lstmkit.engine.stream import next_call, stream_step
from lstmkit.errors import NotBuiltError
from lstmkit.layers.base import Layer, register


class Recurrent(Layer):
    """What ``LSTM``, ``GRU`` and ``SimpleRNN`` share: the loop over time and its options.

    Args:
        units: H, the number of hidden units (memory cells for LSTM).
        input_size: I; None infers it from the first input.
        return_sequences: return the output of every step ``(B, T, P)``, not only the last.
        return_state: also return the final state: ``(y, h, c)`` for LSTM, ``(y, h)`` otherwise.
        stateful: keep the final state of each call (detached) as the next call's initial state,
            until :meth:`reset_states`.
        go_backwards: process the sequence in reverse (outputs come in reversed time order).
        dropout: fraction of input features dropped while training, one mask per sequence.
        recurrent_dropout: fraction of ``h_{t-1}`` dropped where it enters the gates while
            training, one mask per sequence (Gal & Ghahramani 2016).
        engine: ``"auto"`` | ``"native"`` | ``"fused"`` | ``"reference"`` (see :mod:`lstmkit.engine`).
        init: ``"keras"`` or ``"torch"`` weight initialisation.
    """

    supports_masking = True
    state_names: tuple[str, ...] = ("h",)

    def __init__(self, units: int, *, input_size: int | None = None, return_sequences: bool = False,
                 return_state: bool = False, stateful: bool = False, go_backwards: bool = False,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, engine: str = "auto",
                 init: str = "keras"):
        super().__init__()
        name = type(self).__name__
        self.units = check_int(name, "units", units, minimum=1)
        self.input_size = check_int(name, "input_size", input_size, minimum=1, allow_none=True)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.stateful = bool(stateful)
        self.go_backwards = bool(go_backwards)
        self.dropout = check_float(name, "dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
        self.recurrent_dropout = check_float(name, "recurrent_dropout", recurrent_dropout, low=0.0,
                                             high=1.0, high_inclusive=False)
        self.engine = check_choice(name, "engine", engine, ENGINES)
        self.init = check_choice(name, "init", init, INITS)
        self.cell: nn.Module | None = None
        self._states: tuple[torch.Tensor, ...] | None = None
        if self.input_size is not None:
            self.cell = self._make_cell(self.input_size)

    # What the built cell fixes (with each subclass's ``_cell_settings``). Changed afterwards, the
    # layer would describe one shape and compute another: its output size, the inference
    # shortcut's loop bounds and get_config all read these, while the weights keep theirs.
    _fixed_once_built = ("units", "input_size")
    _cell_settings: tuple[str, ...] = ()

    def __setattr__(self, name, value):
        if name in self._fixed_once_built or name in self._cell_settings:
            d = self.__dict__
            if name == "variant":  # by name or as an LSTMVariant, kept as the latter
                value = get_variant(value, type(self).__name__)
            if (d.get("_modules") or {}).get("cell") is not None and name in d:
                if d[name] == value:
                    return  # no change: the value the weights were made for stays as it was given
                same_name = isinstance(value, LSTMVariant) and value.name == d[name].name
                shown = (lambda v: v.name if isinstance(v, LSTMVariant) and not same_name else repr(v))
                raise AttributeError(
                    f"{type(self).__name__}: `{name}` is fixed once the layer is built (its weights were made "
                    f"for {name}={shown(d[name])}); make a new layer for {name}={shown(value)}."
                )
        super().__setattr__(name, value)

    def __delattr__(self, name):
        if (name in self._fixed_once_built or name in self._cell_settings) and self.built:
            raise AttributeError(f"{type(self).__name__}: `{name}` is fixed once the layer is built; it cannot be deleted.")
        super().__delattr__(name)

    # -- to be provided by subclasses ---------------------------------------------------------
    def _make_cell(self, input_size: int) -> nn.Module:
        raise NotImplementedError

    def _cell_config(self) -> dict[str, Any]:
        return {}

    # -- the protocol -------------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.cell is not None

    @property
    def output_size(self) -> int:
        """P: the size of h and of each output step."""
        return self.units

    def build(self, input_size: int, dtype: torch.dtype | None = None, device=None) -> None:
        """Create the weights for inputs of ``input_size`` features (done on the first call)."""
        self.input_size = check_int(type(self).__name__, "input_size", input_size, minimum=1)
        self.cell = self._make_cell(self.input_size).to(dtype=dtype, device=device)

    def get_config(self) -> dict[str, Any]:
        return {"units": self.units, **self._cell_config(), "input_size": self.input_size,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "stateful": self.stateful, "go_backwards": self.go_backwards, "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout, "engine": self.engine, "init": self.init}

    def compute_mask(self, x, mask):
        if not self.return_sequences or mask is None:
            return None
        return mask.flip(1) if self.go_backwards else mask

    def reset_states(self) -> None:
        """Forget the carried state: the next call starts from zeros (or ``initial_state``)."""
        self._states = None

    def _apply(self, fn, *args, **kwargs):
        # .to(), .double(), .cuda() reach the carried state too, as they would a buffer: a
        # stateful layer moved to float64 or another device goes on from where it was
        out = super()._apply(fn, *args, **kwargs)
        states = self.__dict__.get("_states")
        if states is not None:
            self.__dict__["_states"] = tuple(fn(s) for s in states)
        return out

    # A copy (copy.copy, deepcopy, pickle, torch.save) must not inherit the inference shortcut's
    # caches (engine/stream.py): its arrays are the original's, or copies that no longer share
    # memory with the copied tensors. Both layers read their state afresh on their next step
    # (the original too: after a shallow copy both hold the same state tensors).
    def __getstate__(self):
        self.__dict__.pop("_stream_state", None)
        state = dict(super().__getstate__())
        state.pop("_stream", None)  # NumPy views of the weights: pickled, they would be copies
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.pop("_stream_state", None)
        self.__dict__.pop("_stream", None)

    @property
    def states(self) -> tuple[torch.Tensor, ...] | None:
        """The state a stateful layer carries into its next call (None: zeros)."""
        # the inference shortcut updates the arrays of a state it made in place (engine/stream.py);
        # from here on it leaves them alone, so that the tensors handed out stay as they are
        self.__dict__.pop("_stream_state", None)
        return self._states

    @states.setter
    def states(self, value) -> None:
        if value is None:
            self._states = None
            return
        if not self.built:
            raise NotBuiltError(f"{type(self).__name__}: call the layer on an input before setting `states`.")
        batch = value[0].shape[0] if isinstance(value, (tuple, list)) and len(value) else 1
        self._states = self._check_state(value, batch, "states")

    @property
    def engine_in_use(self) -> str | None:
        """The path the last call ran (``"native"``, ``"fused"`` or ``"reference"``)."""
        return getattr(self, "_last_engine", None)

    # -- the call -----------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        # The next step of a stream (a stateful layer in evaluation mode fed one step at a time
        # under no_grad) goes straight to its compiled step: nn.Module.__call__ and forward's
        # checks were up to a tenth of it. next_call (engine/stream.py) steps aside, to the usual
        # call, wherever that would do anything more (hooks, a trace, torch.compile, a graph);
        # so does a forward or _call_impl of a subclass's or the instance's own, or one patched
        # in (mock.patch, torch.fx's tracer patches nn.Module.__call__): only the call runs those.
        if len(args) == 1 and not kwargs:
            d = self.__dict__
            mine = d.get("_stream_state")
            if (mine is not None and mine[3] is not None and "forward" not in d and "_call_impl" not in d
                    and (type(self).forward, type(self)._call_impl, nn.Module.__call__) == _PLAIN_CALL):
                out = next_call(self, args[0], mine)
                if out is not None:
                    return out
        return super().__call__(*args, **kwargs)

    def forward(self, x, initial_state=None, mask=None, lengths=None):
        if (not torch.is_grad_enabled() and type(x) is torch.Tensor
                and initial_state is None and mask is None and lengths is None
                and not torch_ops_only()):  # (a trace, torch.compile, torch.func see torch ops only)
            # inference at small batches: one compiled call (engine/stream.py), which checks the
            # rest itself (a 3-D input, a built cell): self.cell alone costs ~1 us here
            out = stream_step(self, x)
            if out is not None:
                return out
        cell = self.__dict__["_modules"].get("cell")
        if cell is not None and makes_weights(cell):  # weights made by hooks (prune, ...): once a call
            with weights_made_once(cell, (x,)):
                return self._call_engine(x, initial_state, mask, lengths)
        return self._call_engine(x, initial_state, mask, lengths)

    def _call_engine(self, x, initial_state, mask, lengths):
        name = type(self).__name__
        x = self._check_input(x)
        B, T, _ = x.shape
        mask = self._check_mask(x, mask, lengths)
        if mask is not None:
            # A masked step's input reaches no output; zeroed, it cannot reach a gradient either:
            # a NaN there (a missing value) would otherwise leak through 0 * NaN in the torch
            # paths' backward, while the compiled kernels skip the step (all paths agree).
            x = x.masked_fill(~mask[:, :, None], 0.0)
        if initial_state is not None:
            state = self._check_state(initial_state, B, "initial_state")
        elif self.stateful and self._states is not None:
            if self._states[0].shape[0] != B:
                raise ValueError(
                    f"{name}: this stateful layer carries a state for batch size {self._states[0].shape[0]}, "
                    f"but the input has batch size {B}. Keep the batch size fixed (pass batch_size to the "
                    "model, and drop or pad the last partial batch), or call reset_states() first."
                )
            state = self._states
        else:
            state = None  # zeros, made by the path in the shape it needs

        if self.go_backwards:
            x = x.flip(1)
            mask = None if mask is None else mask.flip(1)
        if self.training and self.dropout > 0:
            keep = 1.0 - self.dropout
            x = x * (torch.rand(B, 1, x.shape[2], dtype=x.dtype, device=x.device) < keep) / keep
        rmask = None
        if self.training and self.recurrent_dropout > 0:
            keep = 1.0 - self.recurrent_dropout
            rmask = (torch.rand(B, self.output_size, dtype=x.dtype, device=x.device) < keep) / keep

        path = select_engine(self.cell, self.engine, x, mask, rmask, owner=name)
        y, final = dispatch(path, self.cell, x, state, mask, rmask)
        # Plain attributes set through __dict__: nn.Module.__setattr__ costs microseconds per call,
        # which matters when streaming one step at a time.
        self.__dict__["_last_engine"] = path
        if self.stateful:
            # copies: an output (or a returned state) edited in place must not change the carried state
            self.__dict__["_states"] = tuple(s.detach().clone() for s in final)
        out = y if self.return_sequences else final[0]
        if self.return_state:
            return (out, *final[: len(self.state_names)])
        return out

    # -- checks at the boundary ---------------------------------------------------------------
    def _check_input(self, x) -> torch.Tensor:
        name = type(self).__name__
        if isinstance(x, np.ndarray):
            x = torch.as_tensor(x, dtype=self.cell.weight_ih.dtype if self.built else torch.get_default_dtype())
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected the input as a torch.Tensor or NumPy array, got {type(x).__name__}.")
        if x.dim() != 3:
            hint = (" For one sequence use x[None]; for one feature per step use x[..., None]."
                    if x.dim() == 2 else "")
            expected = self.input_size if self.input_size is not None else "features"
            raise ValueError(
                f"{name}: expected input of shape (batch, time, {expected}), "
                f"got a {x.dim()}-D tensor of shape {tuple(x.shape)}.{hint}"
            )
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point input, got dtype {x.dtype}. Convert it with x.float().")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"{name}: the input is empty: shape {tuple(x.shape)} (batch and time must be >= 1).")
        if not self.built:
            self.build(x.shape[2], dtype=x.dtype, device=x.device)
        if x.shape[2] != self.input_size:
            raise ValueError(
                f"{name}: expected input of shape (batch, time, {self.input_size}), got {tuple(x.shape)}."
            )
        dtype = next(self.cell.parameters()).dtype  # not weight_ih: a parametrized one is made on each read
        if x.dtype != dtype:
            raise TypeError(
                f"{name}: input dtype {x.dtype} does not match the layer's weights ({dtype}). "
                f"Convert the input (x.to({dtype})) or the layer (layer.to({x.dtype}))."
            )
        return x

    def _check_mask(self, x, mask, lengths) -> torch.Tensor | None:
        name = type(self).__name__
        B, T, _ = x.shape
        if mask is not None and lengths is not None:
            raise ValueError(f"{name}: pass either `mask` or `lengths`, not both.")
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
            if lengths.shape != (B,) or lengths.is_floating_point():
                raise ValueError(
                    f"{name}: `lengths` must be {B} integers (one per sequence), got shape {tuple(lengths.shape)} "
                    f"and dtype {lengths.dtype}."
                )
            if bool(((lengths < 0) | (lengths > T)).any()):
                raise ValueError(f"{name}: `lengths` must lie in [0, {T}], got {lengths.tolist()}.")
            return torch.arange(T, device=x.device)[None, :] < lengths[:, None]
        if mask is None:
            return None
        mask = torch.as_tensor(mask, device=x.device)
        if mask.shape != (B, T):
            raise ValueError(
                f"{name}: `mask` must have shape (batch, time) = {(B, T)}, got {tuple(mask.shape)}."
            )
        if mask.dtype != torch.bool:
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError(f"{name}: `mask` must be boolean (True = real step) or 0/1, got other values.")
            mask = mask.bool()
        return None if bool(mask.all()) else mask

    def _check_state(self, state, batch: int, arg: str) -> tuple[torch.Tensor, ...]:
        name = type(self).__name__
        expected = self._state_shapes(batch)
        if isinstance(state, torch.Tensor) and len(expected) == 1:
            state = (state,)
        full = self.cell.initial_state(batch)
        if not isinstance(state, (tuple, list)) or len(state) not in (len(self.state_names), len(full)):
            raise ValueError(
                f"{name}: `{arg}` must be a tuple ({', '.join(self.state_names)}) of tensors with shapes "
                f"{', '.join(str(s) for s in expected)}, got {type(state).__name__}"
                f"{f' of length {len(state)}' if isinstance(state, (tuple, list)) else ''}."
            )
        checked = []
        for k, (s, shape) in enumerate(zip(state, expected)):
            label = self.state_names[k] if k < len(self.state_names) else "a"
            if not isinstance(s, torch.Tensor):
                s = torch.as_tensor(np.asarray(s), dtype=self.cell.weight_ih.dtype)
            if tuple(s.shape) != shape:
                raise ValueError(f"{name}: `{arg}` {label} must have shape {shape}, got {tuple(s.shape)}.")
            if not bool(torch.isfinite(s).all()):
                bad = int((~torch.isfinite(s)).sum())
                raise ValueError(f"{name}: `{arg}` {label} contains {bad} NaN or infinite values.")
            checked.append(s.to(self.cell.weight_ih.dtype))
        checked.extend(full[len(checked):])  # FGR's previous gates default to zeros
        return tuple(checked)

    # -- torch.nn interoperability -----------------------------------------------------------
    torch_class: type = nn.RNNBase  # the torch.nn module computing the same function

    @classmethod
    def from_torch(cls, module: nn.RNNBase, **options):
        """Layers with the weights of a ``torch.nn`` module (see :func:`lstmkit.layers.from_torch`)."""
        from lstmkit.layers.convert import from_torch

        if type(module) is not cls.torch_class:
            raise TypeError(
                f"{cls.__name__}.from_torch: expected a torch.nn.{cls.torch_class.__name__}, got {type(module).__name__}."
            )
        return from_torch(module, **options)

    def to_torch(self) -> nn.RNNBase:
        """A batch-first ``torch.nn`` module computing the same function, with copied weights."""
        from lstmkit.layers.convert import to_torch

        return to_torch(self)

    def _state_shapes(self, batch: int) -> list[tuple[int, ...]]:
        return [tuple(s.shape) for s in self.cell.initial_state(batch, device="meta")]


@register
class LSTM(Recurrent):
    """Long Short-Term Memory layer, any variant of the family (Hochreiter & Schmidhuber 1997).

    Args:
        units: H, memory cells.
        variant: ``"vanilla"`` (default: the forget-gate LSTM of torch.nn.LSTM and Keras),
            ``"lstm1997"``, ``"peephole"``, ``"cifg"``, ``"layernorm"``, the Greff et al. 2015
            ablations ``"nig"``, ``"nfg"``, ``"nog"``, ``"niaf"``, ``"noaf"``, ``"np"``, ``"fgr"``,
            or an :class:`~lstmkit.cells.LSTMVariant`.
        proj_size: P > 0 projects h to P features (Sak et al. 2014; as torch.nn.LSTM).
        unit_forget_bias: start the forget-gate bias at 1.0 (Jozefowicz et al. 2015).
        **options: see :class:`Recurrent`.

    >>> layer = LSTM(16, return_sequences=True)
    >>> layer(torch.zeros(4, 10, 3)).shape
    torch.Size([4, 10, 16])
    >>> y, h, c = LSTM(8, variant="peephole", return_state=True)(torch.zeros(2, 5, 3))
    >>> tuple(y.shape), tuple(c.shape)
    ((2, 8), (2, 8))
    """

    state_names = ("h", "c")
    torch_class = nn.LSTM
    _cell_settings = ("variant", "proj_size", "unit_forget_bias")

    def __init__(self, units: int, variant: str | LSTMVariant = "vanilla", *, proj_size: int = 0,
                 unit_forget_bias: bool = True, **options):
        self.variant = get_variant(variant, "LSTM")
        self.proj_size = check_int("LSTM", "proj_size", proj_size, minimum=0)
        self.unit_forget_bias = bool(unit_forget_bias)
        if self.proj_size and self.proj_size >= check_int("LSTM", "units", units, minimum=1):
            raise ValueError(f"LSTM: `proj_size` must be smaller than `units` ({units}), got {proj_size}.")
        super().__init__(units, **options)

    @property
    def output_size(self) -> int:
        return self.proj_size or self.units

    def _make_cell(self, input_size):
        return LSTMCell(input_size, self.units, self.variant, self.proj_size, self.unit_forget_bias, self.init)

    def _cell_config(self):
        variant = self.variant.name if self.variant.name in _named_variants() else self.variant.to_dict()
        return {"variant": variant, "proj_size": self.proj_size, "unit_forget_bias": self.unit_forget_bias}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("variant"), dict):
            config["variant"] = LSTMVariant(**config["variant"])
        return cls(**config)



@register
class GRU(Recurrent):
    """Gated recurrent unit layer (Cho et al. 2014).

    Args:
        units: H.
        reset_after: apply the reset gate after the recurrent matrix product (True: torch.nn.GRU
            and Keras 2+) or before it (False: the original paper).
        **options: see :class:`Recurrent`.

    >>> GRU(6)(torch.zeros(2, 5, 3)).shape
    torch.Size([2, 6])
    """

    torch_class = nn.GRU
    _cell_settings = ("reset_after",)

    def __init__(self, units: int, *, reset_after: bool = True, **options):
        self.reset_after = bool(reset_after)
        super().__init__(units, **options)

    def _make_cell(self, input_size):
        return GRUCell(input_size, self.units, self.reset_after, self.init)

    def _cell_config(self):
        return {"reset_after": self.reset_after}



@register
class SimpleRNN(Recurrent):
    """The plain (Elman 1990) recurrent layer: ``h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)``.

    >>> SimpleRNN(4, nonlinearity="relu", return_sequences=True)(torch.zeros(2, 5, 3)).shape
    torch.Size([2, 5, 4])
    """

    torch_class = nn.RNN
    _cell_settings = ("nonlinearity",)

    def __init__(self, units: int, *, nonlinearity: str = "tanh", **options):
        self.nonlinearity = check_choice("SimpleRNN", "nonlinearity", nonlinearity, NONLINEARITIES)
        super().__init__(units, **options)

    def _make_cell(self, input_size):
        return RNNCell(input_size, self.units, self.nonlinearity, self.init)

    def _cell_config(self):
        return {"nonlinearity": self.nonlinearity}



# What a call of a Recurrent layer runs as torch and this module define it (Recurrent.__call__)
_PLAIN_CALL = (Recurrent.forward, nn.Module._call_impl, nn.Module.__call__)


def _named_variants():
    from lstmkit.cells.variants import VARIANTS

    return VARIANTS
