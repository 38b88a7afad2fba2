"""The native path: PyTorch's own fused recurrent ops (oneDNN on CPU, cuDNN on GPU).

Used only where the configuration computes exactly the function of the cell: the vanilla LSTM
(with or without projection), the GRU with ``reset_after=True`` and the Elman RNN, without
recurrent dropout, and with either no mask or a mask that keeps a prefix of each sequence (right
padding), which maps onto a packed sequence.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.rnn import RNNCell


def native_unsupported_reason(cell, mask, recurrent_mask) -> str | None:
    """Why the native op cannot compute this configuration, or None if it can."""
    if isinstance(cell, LSTMCell):
        v = cell.variant
        if (v.gates != ("i", "f", "g", "o") or v.peepholes or v.layer_norm or v.gate_recurrence
                or v.input_activation != "tanh" or v.output_activation != "tanh"):
            return f"variant {v.name!r} is not the vanilla LSTM that torch computes"
    elif isinstance(cell, GRUCell):
        if not cell.reset_after:
            return "torch's GRU computes only reset_after=True"
    elif not isinstance(cell, RNNCell):
        return f"{type(cell).__name__} has no native op"
    if recurrent_mask is not None:
        return "recurrent dropout acts inside the recurrence"
    if (isinstance(cell, LSTMCell) and torch.is_autocast_enabled("cpu") and cell.weight_ih.device.type == "cpu"
            and torch.get_autocast_dtype("cpu") == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return "oneDNN has no bfloat16 LSTM kernel on this CPU (it needs AVX-512 BF16)"
    if mask is not None and prefix_lengths(mask) is None:
        return "the mask is not right-padding (a prefix of real steps in every sequence)"
    return None


def prefix_lengths(mask: torch.Tensor) -> torch.Tensor | None:
    """Lengths if every row of ``mask (B, T)`` is True then False (and not empty), else None."""
    lengths = mask.sum(dim=1)
    steps = torch.arange(mask.shape[1], device=mask.device)
    if bool((lengths == 0).any()) or not torch.equal(mask, steps[None, :] < lengths[:, None]):
        return None
    return lengths


def _op_and_params(cell):
    params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    if isinstance(cell, LSTMCell):
        if cell.proj_size:
            params.append(cell.weight_hr)
        return torch.lstm, params
    if isinstance(cell, GRUCell):
        return torch.gru, params
    return (torch.rnn_tanh if cell.nonlinearity == "tanh" else torch.rnn_relu), params


def run_native(cell, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None, mask: torch.Tensor | None = None):
    """Run ``cell`` over ``x (B, T, I)`` with torch's fused op; returns ``(y, state)``.

    ``state`` None: zeros, made directly in the ``(1, B, size)`` shape the op takes (each
    reshaping op costs microseconds of a small ``predict``)."""
    if x.shape[1] == 1 and mask is None and not getattr(cell, "proj_size", 0):
        return _run_cell_op(cell, x, state if state is not None else cell.initial_state(x.shape[0], x.dtype, x.device))
    op, params = _op_and_params(cell)
    lstm = isinstance(cell, LSTMCell)
    if state is None:
        B = x.shape[0]
        h0 = torch.zeros(1, B, cell.output_size if lstm else cell.hidden_size, dtype=x.dtype, device=x.device)
        hx = (h0, torch.zeros(1, B, cell.hidden_size, dtype=x.dtype, device=x.device)) if lstm else h0
    else:
        hx = (state[0].unsqueeze(0), state[1].unsqueeze(0)) if lstm else state[0].unsqueeze(0)
    train = torch.is_grad_enabled()
    if mask is None:
        out = op(x, hx, params, True, 1, 0.0, train, False, True)
        if lstm:
            return out[0], (out[1][0], out[2][0])
        return out[0], (out[1][0],)

    lengths = prefix_lengths(mask)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    order = packed.sorted_indices
    hx = tuple(s[:, order] for s in hx) if lstm else hx[:, order]
    out = op(packed.data, packed.batch_sizes, hx, params, True, 1, 0.0, train, False)
    y, _ = pad_packed_sequence(
        PackedSequence(out[0], packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices),
        batch_first=True, total_length=x.shape[1])
    final = tuple(s[:, packed.unsorted_indices].squeeze(0) for s in out[1:])
    return y, final


_CELL_OPS = {LSTMCell: torch.lstm_cell, GRUCell: torch.gru_cell}


def _run_cell_op(cell, x, state):
    """One step through ATen's fused cell op: a single dispatch for the whole step."""
    op = next((f for cls, f in _CELL_OPS.items() if isinstance(cell, cls)), None)  # subclasses too
    if op is None:
        op = torch.rnn_tanh_cell if cell.nonlinearity == "tanh" else torch.rnn_relu_cell
    params = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    if isinstance(cell, LSTMCell):
        h, c = op(x[:, 0], state, *params)
        return h.unsqueeze(1), (h, c)
    h = op(x[:, 0], state[0], *params)
    return h.unsqueeze(1), (h,)
