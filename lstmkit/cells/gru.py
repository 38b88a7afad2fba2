r"""One time step of the gated recurrent unit (Cho et al. 2014).

With ``reset_after=True`` (the default, as ``torch.nn.GRU`` and Keras 2+ compute it), gate order
r, z, n:

.. math::

    r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
    z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
    n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

With ``reset_after=False`` (the original paper's form), the reset gate applies before the matrix
product: :math:`n_t = \tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \odot h_{t-1}) + b_{hn})`.

Shape:
    ``weight_ih (3H, I)``, ``weight_hh (3H, H)``, ``bias_ih (3H,)``, ``bias_hh (3H,)``;
    the state is ``(h,)`` with ``h (B, H)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lstmkit._validation import check_choice, check_int
from lstmkit.cells.lstm import INITS
from lstmkit.cells.rnn import SingleStateCell


class GRUCell(SingleStateCell):
    """The parameters of a GRU cell and its step function.

    >>> cell = GRUCell(3, 4)
    >>> h, (h_again,) = cell(torch.zeros(2, 3))
    >>> tuple(h.shape)
    (2, 4)
    """

    gates = ("r", "z", "n")

    def __init__(self, input_size: int, hidden_size: int, reset_after: bool = True, init: str = "keras"):
        super().__init__()
        self.input_size = check_int("GRUCell", "input_size", input_size, minimum=1)
        self.hidden_size = check_int("GRUCell", "hidden_size", hidden_size, minimum=1)
        self.reset_after = bool(reset_after)
        self.init = check_choice("GRUCell", "init", init, INITS)
        H = self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * H, self.input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H))
        self.bias_ih = nn.Parameter(torch.empty(3 * H))
        self.bias_hh = nn.Parameter(torch.empty(3 * H))
        self.reset_parameters()

    def forward(self, x, state=None, recurrent_mask=None):
        """One step: ``x (B, I)`` -> ``(h (B, H), (h,))``; ``recurrent_mask`` as in LSTMCell."""
        (h_prev,) = state if state is not None else self.initial_state(x.shape[0], x.dtype, x.device)
        h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
        x_r, x_z, x_n = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, dim=-1)
        W_hr, W_hz, W_hn = self.weight_hh.chunk(3, dim=0)
        b_hr, b_hz, b_hn = self.bias_hh.chunk(3)
        r = torch.sigmoid(x_r + F.linear(h_in, W_hr, b_hr))
        z = torch.sigmoid(x_z + F.linear(h_in, W_hz, b_hz))
        if self.reset_after:
            n = torch.tanh(x_n + r * F.linear(h_in, W_hn, b_hn))
        else:
            n = torch.tanh(x_n + F.linear(r * h_in, W_hn, b_hn))
        h = (1 - z) * n + z * h_prev
        return h, (h,)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, reset_after={self.reset_after}"
