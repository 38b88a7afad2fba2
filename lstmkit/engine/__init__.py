"""The recurrence engine: run a cell over a whole sequence, choosing the fastest correct path.

Three paths compute the same function:

- ``"native"``: torch's fused op (oneDNN / cuDNN), only where it computes exactly the cell's
  function (see :func:`lstmkit.engine.native.native_unsupported_reason`);
- ``"fused"``: lstmkit's kernel with hand-derived BPTT (every LSTM variant, GRU, Elman RNN);
- ``"reference"``: the cell's step in a plain loop under autograd: the ground truth.

``"auto"`` takes ``native`` where it applies and is faster, else ``fused``. See
``docs/performance.md`` for the measurements behind the choice.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import torch

from lstmkit._validation import check_choice
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.rnn import RNNCell
from lstmkit.engine.allocator import retaining_freed_memory
from lstmkit.engine.fused import run_fused_gru, run_fused_lstm, run_fused_rnn, transforms_active, use_jit
from lstmkit.engine.native import native_unsupported_reason, run_native
from lstmkit.engine.reference import run_reference

ENGINES = ("auto", "native", "fused", "reference")

_FUSED = {LSTMCell: run_fused_lstm, GRUCell: run_fused_gru, RNNCell: run_fused_rnn}


def _fused_kernel(cell):
    """The fused runner for ``cell``'s class or a subclass of it (a parametrized cell, such as
    ``torch.nn.utils.parametrize`` makes, is a subclass), else None."""
    return next((run for cls, run in _FUSED.items() if isinstance(cell, cls)), None)


# Up to this batch size, and from this many steps, ``auto`` runs even the vanilla LSTM on the
# compiled sweep (measured, 2 threads: batch 1 and 2 faster than oneDNN, batch 4 slower; at 10
# steps the fused path's set-up costs more than oneDNN's; docs/performance.md).
_FUSED_MAX_BATCH = 2
_FUSED_MIN_STEPS = 50
# ... and in training from batch 32, 128 to 256 units and B * T * H = 3 * 2^18, where oneDNN's
# workspace is page-faulted in every step unless freed memory is retained (_native_is_faster).
_FAULTED_MIN_BATCH = 32
_FAULTED_UNITS = (128, 256)
_FAULTED_MIN_WORK = 3 << 18


def _weight_hook_types() -> tuple[type, ...]:
    from torch.nn.utils.prune import BasePruningMethod
    from torch.nn.utils.spectral_norm import SpectralNorm
    from torch.nn.utils.weight_norm import WeightNorm
    return BasePruningMethod, SpectralNorm, WeightNorm


def cell_hooks(cell) -> str | None:
    """What the hooks on ``cell``'s own call ask of a path: None (no hooks), ``"weights"``
    (forward pre-hooks that only recompute a weight from others: ``torch.nn.utils.prune`` and
    the hook-based ``spectral_norm`` and ``weight_norm``), or ``"steps"`` (any other hook, which
    expects the cell to be called step by step, as only the reference path calls it)."""
    pre, post = getattr(cell, "_forward_pre_hooks", None), getattr(cell, "_forward_hooks", None)
    if not (pre or post):
        return None
    if post or cell._forward_pre_hooks_with_kwargs or not all(isinstance(h, _weight_hook_types()) for h in pre.values()):
        return "steps"
    return "weights"


def select_engine(cell, engine: str, x: torch.Tensor, mask=None, recurrent_mask=None, owner: str = "engine") -> str:
    """The path that will run: ``engine`` itself, or the choice ``"auto"`` makes.

    Raises ``ValueError`` if ``"native"`` is asked for a configuration it cannot compute, or
    ``"native"`` or ``"fused"`` for a cell with hooks on its call other than a weight's
    recomputation (see :func:`cell_hooks`): those paths never call the cell.
    """
    if engine != "auto":
        check_choice(owner, "engine", engine, ENGINES)
    if cell_hooks(cell) == "steps":
        if engine in ("native", "fused"):
            raise ValueError(
                f"{owner}: engine={engine!r} never calls the cell, so the hooks registered on its call would not "
                "run; use engine='reference' (the cell called step by step), which engine='auto' picks here."
            )
        return "reference"
    if engine == "native":
        reason = native_unsupported_reason(cell, mask, recurrent_mask)
        if reason is not None:
            raise ValueError(
                f"{owner}: engine='native' cannot run this layer: {reason}. "
                "Use engine='auto' (picks the fastest correct path) or engine='fused'."
            )
        return "native"
    if engine == "fused" and _fused_kernel(cell) is None:
        raise ValueError(f"{owner}: engine='fused' has no kernel for {type(cell).__name__}; use 'reference'.")
    if engine != "auto":
        return engine
    if transforms_active():
        # torch.func and forward-mode AD: the cell's own torch ops, which they see through (the
        # compiled kernels lose their batch dimensions and tangents, oneDNN's op has no forward
        # derivative, and the fused path's backward is hand-written)
        return "reference"
    if x.shape[1] == 1:
        # One step (streaming inference): the sequence op's set-up costs more than the step. The
        # native path runs ATen's fused cell op then; other cells run their own step.
        native = native_unsupported_reason(cell, mask, recurrent_mask) is None and mask is None
        return "native" if native and not getattr(cell, "proj_size", 0) else "reference"
    if native_unsupported_reason(cell, mask, recurrent_mask) is None and _native_is_faster(cell, x):
        return "native"
    return "fused" if _fused_kernel(cell) is not None else "reference"


def _native_is_faster(cell, x: torch.Tensor) -> bool:
    # On the CPU torch has a oneDNN kernel only for the LSTM without projection; its GRU, RNN and
    # projected LSTM are generic loops that are slower than ours at small sizes and equal at large
    # ones, the GRU's a little faster there (docs/performance.md). On GPUs cuDNN wins for all of
    # them. For one or two sequences the compiled sweep beats oneDNN too, given enough steps
    # (train step 4.0 against 6.9 ms at (1, 1000, 1, 64)).
    if x.device.type != "cpu":
        return True
    if isinstance(cell, GRUCell):
        # torch's GRU is a generic loop on the CPU: far slower than the compiled sweep wherever
        # that runs, but faster than our torch sweep above it (train step 321 against 354 ms at
        # (128, 50, 128, 512), 188 against 213 at (256, 50, 64, 256); docs/performance.md).
        # Under bf16 autocast the torch sweep stays: it runs its products in bf16.
        if torch.is_autocast_enabled("cpu"):
            return False
        # training limits only where a graph will be built: a frozen GRU (no parameter or input
        # needing a gradient) runs the compiled sweep without saving, as in inference
        training = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in cell.parameters()))
        return not use_jit(None, x.shape[0], 3 * cell.hidden_size, x, training=training)
    if not isinstance(cell, LSTMCell) or cell.proj_size:
        return False
    B, T, H = x.shape[0], x.shape[1], cell.hidden_size
    if B <= _FUSED_MAX_BATCH and T >= _FUSED_MIN_STEPS and use_jit(cell.variant, B, 4 * H, x):
        return False
    # Training where oneDNN's saved activations (~67 bytes per row, unit and step) outgrow glibc's
    # largest mmap threshold (32 MB): unless freed memory is retained, its workspace comes back
    # from the system, page-faulted in, every step, and the compiled sweep, which saves less than
    # half as much, wins (train step 0.62x-0.97x of oneDNN's at 13 sizes there, each in a fresh
    # process; with memory retained the two are within 0.97x-1.04x; at 512 units, or batch 16,
    # oneDNN wins either way; docs/performance.md).
    if (_FAULTED_MIN_BATCH <= B and _FAULTED_UNITS[0] <= H <= _FAULTED_UNITS[1] and B * T * H >= _FAULTED_MIN_WORK
            and not retaining_freed_memory() and x.dtype == torch.float32 and use_jit(cell.variant, B, 4 * H, x)
            and torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in cell.parameters()))):
        return False
    return True


def run(cell, x: torch.Tensor, state: tuple[torch.Tensor, ...], mask: torch.Tensor | None = None,
        recurrent_mask: torch.Tensor | None = None, engine: str = "auto"):
    """Run ``cell`` over ``x (B, T, I)`` from ``state``; returns ``(y (B, T, P), final state)``.

    ``mask (B, T)`` bool: False steps leave the state unchanged and output zeros.
    ``recurrent_mask (B, P)``: multiplies ``h_{t-1}`` inside the recurrence (recurrent dropout).
    Either may have a batch axis of 1, meaning the same for every sequence. ``state`` None starts
    from zeros.
    """
    with weights_made_once(cell, (x,)) if makes_weights(cell) else contextlib.nullcontext():
        mask, recurrent_mask = _checked_run_inputs(cell, x, state, mask, recurrent_mask)
        return dispatch(select_engine(cell, engine, x, mask, recurrent_mask), cell, x, state, mask, recurrent_mask)


def makes_weights(cell) -> bool:
    """Whether ``cell`` makes a weight from others on its call (the hooks of
    ``torch.nn.utils.prune``, ``spectral_norm``, ``weight_norm``); cheap, for the hot path: such a
    call runs inside :func:`weights_made_once`."""
    return bool(cell.__dict__["_forward_pre_hooks"])


@contextlib.contextmanager
def weights_made_once(cell, inputs: tuple = ()):
    """Within: each weight that a hook on ``cell``'s call makes from others is made once, as
    torch's own recurrent modules make theirs once per call, and every path reads that one. The
    weight pre-hooks (:func:`cell_hooks` ``"weights"``) run now and stand aside until the end
    (the reference path calls the cell every step, which would run them, and spectral_norm's
    power iteration, T times). A cell with any other hook keeps all its hooks: it runs step by
    step.

    A weight of ``torch.nn.utils.parametrize`` is made on every read, as torch makes it (the
    paths read it a different number of times; in training, spectral_norm's power iteration runs
    on each read): wrap the call in ``parametrize.cached()`` to make it once, as torch advises.
    Entering that here would switch torch's one process-wide cache on for every other thread."""
    d = cell.__dict__
    hooks = d["_forward_pre_hooks"]
    standing_aside = bool(hooks) and cell_hooks(cell) == "weights"
    if standing_aside:
        for hook in tuple(hooks.values()):
            hook(cell, inputs)
        d["_forward_pre_hooks"] = OrderedDict()
    try:
        yield
    finally:
        if standing_aside:
            d["_forward_pre_hooks"] = hooks


def _checked_run_inputs(cell, x, state, mask, recurrent_mask):
    """:func:`run`'s arguments, checked here: the paths assume them (the compiled kernels read
    them without bounds checks), and a mismatch must say which argument, not fail deep in a kernel
    or return a state of another dtype. Returns the masks expanded to the whole batch (the native
    path takes sequence lengths from the mask's rows). The layers check their own inputs and
    call :func:`dispatch`."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or not x.is_floating_point():
        got = f"a {x.dim()}-D {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"engine.run: `x` must be a floating (batch, time, features) tensor, got {got}.")
    B, T, features = x.shape
    if features != cell.input_size:
        raise ValueError(f"engine.run: the cell takes {cell.input_size} features per step, `x` has {features}.")
    expected = cell.initial_state(B, x.dtype, x.device)
    if state is not None:
        if not isinstance(state, (tuple, list)) or len(state) != len(expected):
            raise ValueError(f"engine.run: `state` must be a tuple of {len(expected)} tensor(s) "
                             f"{[tuple(e.shape) for e in expected]}, got {type(state).__name__}"
                             + (f" of {len(state)}" if isinstance(state, (tuple, list)) else "") + ".")
        for k, (s, e) in enumerate(zip(state, expected)):
            if not isinstance(s, torch.Tensor) or s.shape != e.shape:
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"engine.run: state[{k}] must have shape {tuple(e.shape)}, got {got}.")
            if s.dtype != x.dtype or s.device != x.device:
                raise TypeError(f"engine.run: state[{k}] is {s.dtype} on {s.device}, `x` {x.dtype} on {x.device}; "
                                f"convert it with .to(x).")
    for name, m, dtype, shape in (("mask", mask, torch.bool, (B, T)),
                                  ("recurrent_mask", recurrent_mask, x.dtype, (B, expected[0].shape[1]))):
        if m is None:
            continue
        if not isinstance(m, torch.Tensor) or m.dtype != dtype or m.device != x.device:
            got = f"{m.dtype} on {m.device}" if isinstance(m, torch.Tensor) else type(m).__name__
            raise TypeError(f"engine.run: `{name}` must be a {dtype} tensor on {x.device}, got {got}.")
        if m.dim() != 2 or m.shape[1] != shape[1] or m.shape[0] not in (1, B):
            raise ValueError(f"engine.run: `{name}` must have shape {shape} (or 1 for the batch), "
                             f"got {tuple(m.shape)}.")
    return (None if mask is None else mask.expand(B, T),
            None if recurrent_mask is None else recurrent_mask.expand(B, expected[0].shape[1]))


def dispatch(path: str, cell, x, state, mask=None, recurrent_mask=None):
    """Run an already selected path (see :func:`select_engine`); no checks on the hot path.

    ``state`` None starts from zeros (the native path makes them in the shape its op takes).
    A cell whose weights hooks make must run inside :func:`weights_made_once` (the layers and
    :func:`run` enter it)."""
    if path == "native":
        return run_native(cell, x, state, mask)
    if state is None:
        state = cell.initial_state(x.shape[0], x.dtype, x.device)
    if path == "fused":
        return _fused_kernel(cell)(cell, x, state, mask, recurrent_mask)
    return run_reference(cell, x, state, mask, recurrent_mask)


__all__ = ["ENGINES", "cell_hooks", "dispatch", "makes_weights", "run", "run_native", "run_reference", "select_engine",
           "weights_made_once"]
