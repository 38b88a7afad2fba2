r"""One time step of the plain (Elman 1990) recurrent network, the baseline LSTMs were made to beat.

.. math::

    h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \qquad \phi \in \{\tanh, \mathrm{relu}\}

Shape: ``weight_ih (H, I)``, ``weight_hh (H, H)``, ``bias_ih (H,)``, ``bias_hh (H,)``; state ``(h,)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lstmkit._validation import check_choice, check_int
from lstmkit.cells.lstm import INITS, init_recurrent_weights

NONLINEARITIES = ("tanh", "relu")


class SingleStateCell(nn.Module):
    """What the GRU and Elman cells share: a state ``(h,)`` and the standard initialisation."""

    output_size = property(lambda self: self.hidden_size)

    def reset_parameters(self) -> None:
        init_recurrent_weights(self, self.init)

    def initial_state(self, batch: int, dtype=None, device=None) -> tuple[torch.Tensor]:
        """Zeros ``(h,)`` with ``h (batch, H)``."""
        return (torch.zeros(batch, self.hidden_size, dtype=dtype or self.weight_ih.dtype,
                            device=device or self.weight_ih.device),)


class RNNCell(SingleStateCell):
    """The parameters of an Elman cell and its step function.

    >>> h, _ = RNNCell(3, 4, nonlinearity="relu")(torch.zeros(2, 3))
    >>> tuple(h.shape)
    (2, 4)
    """

    gates = ("h",)

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", init: str = "keras"):
        super().__init__()
        self.input_size = check_int("RNNCell", "input_size", input_size, minimum=1)
        self.hidden_size = check_int("RNNCell", "hidden_size", hidden_size, minimum=1)
        self.nonlinearity = check_choice("RNNCell", "nonlinearity", nonlinearity, NONLINEARITIES)
        self.init = check_choice("RNNCell", "init", init, INITS)
        H = self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(H, self.input_size))
        self.weight_hh = nn.Parameter(torch.empty(H, H))
        self.bias_ih = nn.Parameter(torch.empty(H))
        self.bias_hh = nn.Parameter(torch.empty(H))
        self.reset_parameters()

    def forward(self, x, state=None, recurrent_mask=None):
        (h_prev,) = state if state is not None else self.initial_state(x.shape[0], x.dtype, x.device)
        h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
        z = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h_in, self.weight_hh, self.bias_hh)
        h = torch.tanh(z) if self.nonlinearity == "tanh" else torch.relu(z)
        return h, (h,)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"
