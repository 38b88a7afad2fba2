"""The LSTM family as data: which gates exist, peepholes, coupling, activations, normalisation.

Each named variant of the literature is an :class:`LSTMVariant`; the step function in
:mod:`lstmkit.cells.lstm` and the fused kernel in :mod:`lstmkit.engine.fused` both read these
flags, so a variant is defined once and runs on every path.

=========  =======================================================  ===============================
name       what changes                                             source
=========  =======================================================  ===============================
vanilla    forget gate, no peepholes (torch.nn.LSTM, Keras)         Gers, Schmidhuber & Cummins 2000
lstm1997   no forget gate (f = 1), no peepholes                     Hochreiter & Schmidhuber 1997
peephole   c_{t-1} into i and f, c_t into o                         Gers & Schmidhuber 2000
nig        peephole LSTM, no input gate (i = 1)                     Greff et al. 2015
nfg        peephole LSTM, no forget gate (f = 1)                    Greff et al. 2015
nog        peephole LSTM, no output gate (o = 1)                    Greff et al. 2015
niaf       peephole LSTM, no input activation (g = z_g)             Greff et al. 2015
noaf       peephole LSTM, no output activation (h = o * c)          Greff et al. 2015
np         no peepholes: the same function as vanilla               Greff et al. 2015
cifg       peephole LSTM, coupled input-forget gate (f = 1 - i)     Greff et al. 2015
fgr        peephole LSTM, full gate recurrence (i, f, o of t-1      Greff et al. 2015
           feed every gate through ``weight_gr``)
layernorm  layer normalisation of W x, W h and c                    Ba, Kiros & Hinton 2016
=========  =======================================================  ===============================

Note on ``lstm1997``: the 1997 paper squashes the cell input to [-2, 2] and the cell output to
[-1, 1] with scaled logistic functions; lstmkit uses tanh for both, as every later LSTM does, so
that the variant differs from ``vanilla`` only by the missing forget gate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

_FORGET_KINDS = ("learned", "none", "coupled")
_ACTIVATIONS = ("tanh", "identity")


@dataclass(frozen=True)
class LSTMVariant:
    """One member of the LSTM family.

    Attributes:
        name: the name used in ``LSTM(variant=...)``.
        input_gate: False fixes ``i = 1`` (NIG).
        forget_gate: ``"learned"``; ``"none"`` fixes ``f = 1`` (1997 cell, NFG);
            ``"coupled"`` sets ``f = 1 - i`` (CIFG).
        output_gate: False fixes ``o = 1`` (NOG).
        peepholes: cell state into the gates, through the vectors ``weight_ci``, ``weight_cf``,
            ``weight_co`` (only for gates that exist and are learned).
        input_activation: squashing of the cell input ``g``: ``"tanh"`` or ``"identity"`` (NIAF).
        output_activation: squashing of the cell output: ``"tanh"`` or ``"identity"`` (NOAF).
        gate_recurrence: the previous step's ``i, f, o`` feed all three gates through
            ``weight_gr`` of shape ``(3H, 3H)`` (FGR).
        layer_norm: normalise ``W_ih x``, ``W_hh h`` and ``c`` per sample (Ba et al. 2016).
        source: the paper that defines it.
    """

    name: str
    input_gate: bool = True
    forget_gate: str = "learned"
    output_gate: bool = True
    peepholes: bool = False
    input_activation: str = "tanh"
    output_activation: str = "tanh"
    gate_recurrence: bool = False
    layer_norm: bool = False
    source: str = ""

    def __post_init__(self):
        if self.forget_gate not in _FORGET_KINDS:
            raise ValueError(f"LSTMVariant: `forget_gate` must be one of {_FORGET_KINDS}, got {self.forget_gate!r}.")
        for field in ("input_activation", "output_activation"):
            if getattr(self, field) not in _ACTIVATIONS:
                raise ValueError(f"LSTMVariant: `{field}` must be one of {_ACTIVATIONS}, got {getattr(self, field)!r}.")
        if self.forget_gate == "coupled" and not self.input_gate:
            raise ValueError("LSTMVariant: a coupled forget gate (f = 1 - i) needs the input gate.")
        if self.gate_recurrence and self.recurrent_gates != ("i", "f", "o"):
            raise ValueError("LSTMVariant: `gate_recurrence` needs learned input, forget and output gates.")

    @property
    def gates(self) -> tuple[str, ...]:
        """The gate blocks that have weights, in torch's order i, f, g, o."""
        present = []
        if self.input_gate:
            present.append("i")
        if self.forget_gate == "learned":
            present.append("f")
        present.append("g")
        if self.output_gate:
            present.append("o")
        return tuple(present)

    @property
    def recurrent_gates(self) -> tuple[str, ...]:
        """The gates whose previous activations FGR feeds back: the learned ones among i, f, o."""
        return tuple(gate for gate in self.gates if gate != "g")

    @property
    def peephole_gates(self) -> tuple[str, ...]:
        """The gates that have a peephole weight ``weight_c<gate>``."""
        return self.recurrent_gates if self.peepholes else ()

    def to_dict(self) -> dict:
        return asdict(self)


_GREFF = "Greff et al. 2015, LSTM: A Search Space Odyssey"
_PEEPHOLE = dict(peepholes=True)

VARIANTS: dict[str, LSTMVariant] = {
    v.name: v
    for v in (
        LSTMVariant("vanilla", source="Gers, Schmidhuber & Cummins 2000 (forget gate); torch.nn.LSTM"),
        LSTMVariant("lstm1997", forget_gate="none", source="Hochreiter & Schmidhuber 1997"),
        LSTMVariant("peephole", **_PEEPHOLE, source="Gers & Schmidhuber 2000"),
        LSTMVariant("nig", input_gate=False, **_PEEPHOLE, source=_GREFF),
        LSTMVariant("nfg", forget_gate="none", **_PEEPHOLE, source=_GREFF),
        LSTMVariant("nog", output_gate=False, **_PEEPHOLE, source=_GREFF),
        LSTMVariant("niaf", input_activation="identity", **_PEEPHOLE, source=_GREFF),
        LSTMVariant("noaf", output_activation="identity", **_PEEPHOLE, source=_GREFF),
        LSTMVariant("np", source=_GREFF),
        LSTMVariant("cifg", forget_gate="coupled", **_PEEPHOLE, source=_GREFF),
        LSTMVariant("fgr", gate_recurrence=True, **_PEEPHOLE, source=_GREFF),
        LSTMVariant("layernorm", layer_norm=True, source="Ba, Kiros & Hinton 2016, Layer Normalization"),
    )
}


def get_variant(variant: str | LSTMVariant, owner: str = "LSTM") -> LSTMVariant:
    """Look a variant up by name (or pass an :class:`LSTMVariant` through)."""
    if isinstance(variant, LSTMVariant):
        return variant
    if not isinstance(variant, str):
        raise TypeError(f"{owner}: `variant` must be a name or an LSTMVariant, got {type(variant).__name__}.")
    try:
        return VARIANTS[variant.lower()]
    except KeyError:
        raise ValueError(
            f"{owner}: unknown `variant` {variant!r}. Expected one of: {', '.join(VARIANTS)}."
        ) from None
