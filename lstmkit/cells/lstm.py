r"""One time step of the LSTM family.

For the variant flags see :mod:`lstmkit.cells.variants`. With every flag at its default (the
``vanilla`` cell) one step computes, exactly as ``torch.nn.LSTM``:

.. math::

    i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
    f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
    g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
    o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
    h_t &= o_t \odot \tanh(c_t)

Peepholes (Gers & Schmidhuber 2000) add :math:`w_{ci} \odot c_{t-1}` to the input gate's and
:math:`w_{cf} \odot c_{t-1}` to the forget gate's pre-activation, and :math:`w_{co} \odot c_t` to
the output gate's. Full gate recurrence (Greff et al. 2015, FGR) adds
:math:`W_{gr} [i_{t-1}; f_{t-1}; o_{t-1}]` to the three gates. Layer normalisation (Ba et al.
2016) replaces the pre-activation by :math:`LN(W_{ih} x_t) + LN(W_{hh} h_{t-1}) + b` and the
cell output by :math:`o_t \odot \tanh(LN(c_t))`. With ``proj_size > 0`` (Sak et al. 2014, as in
``torch.nn.LSTM``), :math:`h_t = W_{hr}(o_t \odot \tanh(c_t))`.

Shape:
    B batch, I input features, H hidden units, P = proj_size or H (the size of h), G the number
    of gate blocks with weights (4 for vanilla; ``len(variant.gates)``).
    ``weight_ih (G*H, I)``, ``weight_hh (G*H, P)``, ``bias_ih (G*H,)``, ``bias_hh (G*H,)``,
    ``weight_hr (P, H)``, ``weight_ci/cf/co (H,)``, ``weight_gr (3H, 3H)``,
    ``ln_ih_weight (G*H,)``, ``ln_hh_weight (G*H,)``, ``ln_c_weight (H,)``, ``ln_c_bias (H,)``.
    The state is ``(h, c)``, or ``(h, c, a)`` for FGR where ``a (B, 3H)`` holds the previous
    ``i, f, o``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lstmkit._validation import check_choice, check_int
from lstmkit.cells.variants import LSTMVariant, get_variant

LN_EPS = 1e-5
INITS = ("keras", "torch")


def layer_norm(z: torch.Tensor) -> torch.Tensor:
    """Normalise the last axis to zero mean and unit variance (no gain, no bias)."""
    return F.layer_norm(z, z.shape[-1:], eps=LN_EPS)


def init_recurrent_weights(cell: nn.Module, scheme: str) -> None:
    """Initialise a recurrent cell's parameters in place.

    ``"keras"``: Glorot-uniform input weights, an orthogonal matrix per gate block of
    ``weight_hh``, zero biases, Glorot-uniform for other matrices, uniform in
    ``[-1/sqrt(H), 1/sqrt(H)]`` for peephole vectors. ``"torch"``: everything uniform in
    ``[-1/sqrt(H), 1/sqrt(H)]``, as ``torch.nn.LSTM``. Layer-norm gains start at 1, their biases at 0.
    """
    H = cell.hidden_size
    bound = 1.0 / math.sqrt(H)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            if name.startswith("ln_"):
                p.fill_(0.0 if name.endswith("bias") else 1.0)
            elif scheme == "torch" or p.dim() == 1 and not name.startswith("bias"):
                p.uniform_(-bound, bound)
            elif name.startswith("bias"):
                p.zero_()
            elif name == "weight_hh":
                for block in p.split(H, dim=0):
                    nn.init.orthogonal_(block)
            else:
                nn.init.xavier_uniform_(p)


def activation(name: str, z: torch.Tensor) -> torch.Tensor:
    return torch.tanh(z) if name == "tanh" else z


class LSTMCell(nn.Module):
    """The parameters of one LSTM-family cell and its step function.

    Args:
        input_size: I, features per time step.
        hidden_size: H, memory cells.
        variant: a name from :data:`lstmkit.cells.variants.VARIANTS` or an ``LSTMVariant``.
        proj_size: P > 0 adds the output projection ``weight_hr``; 0 for none.
        unit_forget_bias: start the forget-gate bias at 1.0 (Jozefowicz et al. 2015).
        init: ``"keras"`` (Glorot-uniform ``weight_ih``, orthogonal ``weight_hh``, zero biases) or
            ``"torch"`` (everything uniform in ``[-1/sqrt(H), 1/sqrt(H)]``). Peephole, gate
            recurrence and projection weights start as in the chosen scheme's dense weights;
            layer-norm gains at 1.

    >>> cell = LSTMCell(3, 5, variant="peephole")
    >>> h, state = cell(torch.zeros(2, 3))
    >>> tuple(h.shape), len(state)
    ((2, 5), 2)
    """

    def __init__(self, input_size: int, hidden_size: int, variant: str | LSTMVariant = "vanilla",
                 proj_size: int = 0, unit_forget_bias: bool = True, init: str = "keras"):
        super().__init__()
        self.input_size = check_int("LSTMCell", "input_size", input_size, minimum=1)
        self.hidden_size = check_int("LSTMCell", "hidden_size", hidden_size, minimum=1)
        self.proj_size = check_int("LSTMCell", "proj_size", proj_size, minimum=0)
        if self.proj_size >= self.hidden_size:
            raise ValueError(
                f"LSTMCell: `proj_size` must be smaller than `hidden_size` ({hidden_size}), got {proj_size}."
            )
        self.variant = get_variant(variant, "LSTMCell")
        self.unit_forget_bias = bool(unit_forget_bias)
        self.init = check_choice("LSTMCell", "init", init, INITS)
        H, P, G = self.hidden_size, self.output_size, len(self.variant.gates)
        self.weight_ih = nn.Parameter(torch.empty(G * H, self.input_size))
        self.weight_hh = nn.Parameter(torch.empty(G * H, P))
        self.bias_ih = nn.Parameter(torch.empty(G * H))
        self.bias_hh = nn.Parameter(torch.empty(G * H))
        for gate in self.variant.peephole_gates:
            setattr(self, f"weight_c{gate}", nn.Parameter(torch.empty(H)))
        if self.variant.gate_recurrence:
            self.weight_gr = nn.Parameter(torch.empty(3 * H, 3 * H))
        if self.variant.layer_norm:
            self.ln_ih_weight = nn.Parameter(torch.empty(G * H))
            self.ln_hh_weight = nn.Parameter(torch.empty(G * H))
            self.ln_c_weight = nn.Parameter(torch.empty(H))
            self.ln_c_bias = nn.Parameter(torch.empty(H))
        if self.proj_size:
            self.weight_hr = nn.Parameter(torch.empty(P, H))
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        """The size of h: ``proj_size`` if set, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    def reset_parameters(self) -> None:
        init_recurrent_weights(self, self.init)
        if self.unit_forget_bias and "f" in self.variant.gates:
            H, k = self.hidden_size, self.variant.gates.index("f")
            with torch.no_grad():
                # torch adds both biases: the 1.0 goes in bias_ih only, so their sum starts at 1.
                self.bias_ih[k * H:(k + 1) * H].fill_(1.0)
                self.bias_hh[k * H:(k + 1) * H].fill_(0.0)

    def initial_state(self, batch: int, dtype=None, device=None) -> tuple[torch.Tensor, ...]:
        """Zeros of the right shapes: ``(h, c)``, or ``(h, c, a)`` for FGR."""
        dtype = dtype or self.weight_ih.dtype
        device = device or self.weight_ih.device
        h = torch.zeros(batch, self.output_size, dtype=dtype, device=device)
        c = torch.zeros(batch, self.hidden_size, dtype=dtype, device=device)
        if self.variant.gate_recurrence:
            return h, c, torch.zeros(batch, 3 * self.hidden_size, dtype=dtype, device=device)
        return h, c

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None,
                recurrent_mask: torch.Tensor | None = None):
        """One step: ``x (B, I)``, ``state`` from :meth:`initial_state` -> ``(h (B, P), new state)``.

        ``recurrent_mask (B, P)``, if given, multiplies ``h_{t-1}`` where it enters the gates
        (variational recurrent dropout, Gal & Ghahramani 2016); the carried state is not masked.
        """
        h, new_state, _ = self.step(x, state, recurrent_mask)
        return h, new_state

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None,
             recurrent_mask: torch.Tensor | None = None):
        """One step that also returns the gates: ``(h, new state, {"i", "f", "g", "o"})``.

        A gate the variant lacks is returned as ones (a coupled forget gate as ``1 - i``), so
        plots and analyses read every variant the same way.

        >>> h, state, gates = LSTMCell(2, 3, variant="cifg").step(torch.zeros(1, 2))
        >>> sorted(gates), bool(torch.allclose(gates["f"], 1 - gates["i"]))
        (['f', 'g', 'i', 'o'], True)
        """
        if state is None:
            state = self.initial_state(x.shape[0], x.dtype, x.device)
        v = self.variant
        h_prev, c_prev = state[0], state[1]
        h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
        if v.layer_norm:
            z = (layer_norm(F.linear(x, self.weight_ih)) * self.ln_ih_weight
                 + layer_norm(F.linear(h_in, self.weight_hh)) * self.ln_hh_weight
                 + self.bias_ih + self.bias_hh)
        else:
            z = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h_in, self.weight_hh, self.bias_hh)
        z = dict(zip(v.gates, z.chunk(len(v.gates), dim=-1)))
        if v.gate_recurrence:
            z_i, z_f, z_o = F.linear(state[2], self.weight_gr).chunk(3, dim=-1)
            z["i"], z["f"], z["o"] = z["i"] + z_i, z["f"] + z_f, z["o"] + z_o

        ones = torch.ones_like(c_prev)
        i = torch.sigmoid(z["i"] + self._peephole("i", c_prev)) if v.input_gate else ones
        if v.forget_gate == "learned":
            f = torch.sigmoid(z["f"] + self._peephole("f", c_prev))
        else:
            f = 1.0 - i if v.forget_gate == "coupled" else ones
        g = activation(v.input_activation, z["g"])
        c = f * c_prev + i * g
        o = torch.sigmoid(z["o"] + self._peephole("o", c)) if v.output_gate else ones
        h = o * activation(v.output_activation, self._normalise_cell(c))
        if self.proj_size:
            h = F.linear(h, self.weight_hr)

        gates = {"i": i, "f": f, "g": g, "o": o}
        if v.gate_recurrence:
            return h, (h, c, torch.cat([i, f, o], dim=-1)), gates
        return h, (h, c), gates

    def _peephole(self, gate: str, c: torch.Tensor):
        return getattr(self, f"weight_c{gate}") * c if gate in self.variant.peephole_gates else 0.0

    def _normalise_cell(self, c: torch.Tensor) -> torch.Tensor:
        if not self.variant.layer_norm:
            return c
        return layer_norm(c) * self.ln_c_weight + self.ln_c_bias

    def extra_repr(self) -> str:
        proj = f", proj_size={self.proj_size}" if self.proj_size else ""
        return f"{self.input_size}, {self.hidden_size}, variant={self.variant.name!r}{proj}"
