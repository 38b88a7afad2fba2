"""``Bidirectional``: one recurrent layer reads the sequence forwards, a copy reads it backwards.

Shape:
    Input ``(B, T, I)``. With ``return_sequences`` each direction gives ``(B, T, P)``, both in
    the input's time order; merged by ``concat`` to ``(B, T, 2P)``, by ``sum``/``mul``/``ave`` to
    ``(B, T, P)``, or returned as a pair with ``merge_mode=None``. Without ``return_sequences``
    each direction gives its final output ``(B, P)`` (for the backward layer: after reading the
    first step), as ``torch.nn.LSTM(bidirectional=True)`` does in ``h_n``.

With a mask, the backward layer starts at each sequence's last real step, so the result equals
running every unpadded sequence alone (and ``torch.nn.LSTM`` on a packed sequence).
"""

from __future__ import annotations

from typing import Any

import torch

from lstmkit._validation import check_choice
from lstmkit.layers.base import Layer, deserialize, register, serialize
from lstmkit.layers.recurrent import Recurrent

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


@register
class Bidirectional(Layer):
    """Run ``layer`` in both directions and merge the outputs.

    Args:
        layer: a recurrent layer (``LSTM``, ``GRU``, ``SimpleRNN``) for the forward direction.
        merge_mode: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"`` or None (a pair).
        backward_layer: the layer for the backward direction; by default a fresh copy of
            ``layer``'s configuration (own weights) with ``go_backwards`` flipped.

    ``initial_state`` is the forward states followed by the backward ones: ``(h_f, c_f, h_b,
    c_b)`` for LSTM. With ``return_state`` the call returns ``(y, h_f, c_f, h_b, c_b)``.

    >>> from lstmkit.layers import LSTM
    >>> Bidirectional(LSTM(8, return_sequences=True))(torch.zeros(2, 5, 3)).shape
    torch.Size([2, 5, 16])
    """

    supports_masking = True

    def __init__(self, layer: Recurrent, merge_mode: str | None = "concat", backward_layer: Recurrent | None = None):
        super().__init__()
        if not isinstance(layer, Recurrent):
            raise TypeError(f"Bidirectional: `layer` must be an LSTM, GRU or SimpleRNN layer, got {type(layer).__name__}.")
        self.merge_mode = check_choice("Bidirectional", "merge_mode", merge_mode, MERGE_MODES)
        if backward_layer is None:
            config = layer.get_config()
            config["go_backwards"] = not layer.go_backwards
            backward_layer = type(layer).from_config(config)
        elif not isinstance(backward_layer, Recurrent):
            raise TypeError(f"Bidirectional: `backward_layer` must be a recurrent layer, got {type(backward_layer).__name__}.")
        for option in ("return_sequences", "return_state", "stateful"):
            if getattr(layer, option) != getattr(backward_layer, option):
                raise ValueError(f"Bidirectional: `layer` and `backward_layer` must agree on `{option}`.")
        if layer.go_backwards == backward_layer.go_backwards:
            raise ValueError("Bidirectional: `backward_layer` must read the other way: set its `go_backwards` "
                             "opposite to `layer`'s.")
        self.forward_layer = layer
        self.backward_layer = backward_layer
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state

    @property
    def built(self) -> bool:
        return self.forward_layer.built and self.backward_layer.built

    @property
    def output_size(self) -> int:
        size = self.forward_layer.output_size
        return 2 * size if self.merge_mode == "concat" else size

    def get_config(self) -> dict[str, Any]:
        return {"layer": serialize(self.forward_layer), "merge_mode": self.merge_mode,
                "backward_layer": serialize(self.backward_layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize(config["backward_layer"])
        return cls(**config)

    def reset_states(self) -> None:
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    def compute_mask(self, x, mask):
        return mask if self.return_sequences else None

    def forward(self, x, initial_state=None, mask=None, lengths=None):
        f_state = b_state = None
        if initial_state is not None:
            if not isinstance(initial_state, (tuple, list)) or len(initial_state) % 2:
                raise ValueError(
                    "Bidirectional: `initial_state` must list the forward states then the backward states, "
                    f"an even number of tensors; got {type(initial_state).__name__}"
                    f"{f' of length {len(initial_state)}' if isinstance(initial_state, (tuple, list)) else ''}."
                )
            half = len(initial_state) // 2
            f_state, b_state = initial_state[:half], initial_state[half:]
        f_out = self.forward_layer(x, initial_state=f_state, mask=mask, lengths=lengths)
        b_out = self.backward_layer(x, initial_state=b_state, mask=mask, lengths=lengths)
        if self.return_state:
            (y_f, *s_f), (y_b, *s_b) = f_out, b_out
        else:
            y_f, y_b, s_f, s_b = f_out, b_out, [], []
        if self.return_sequences:  # bring the reversed direction back to the input's time order
            if self.backward_layer.go_backwards:
                y_b = y_b.flip(1)
            if self.forward_layer.go_backwards:
                y_f = y_f.flip(1)
        y = self._merge(y_f, y_b)
        return (y, *s_f, *s_b) if self.return_state else y

    def _merge(self, y_f, y_b):
        if self.merge_mode == "concat":
            return torch.cat([y_f, y_b], dim=-1)
        if self.merge_mode == "sum":
            return y_f + y_b
        if self.merge_mode == "mul":
            return y_f * y_b
        if self.merge_mode == "ave":
            return (y_f + y_b) / 2
        return y_f, y_b
