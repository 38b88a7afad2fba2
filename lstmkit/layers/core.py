"""The non-recurrent layers composed around recurrent ones.

``Dense``, ``Dropout``, ``Activation``, ``Flatten``, ``RepeatVector``, ``TimeDistributed``,
``Masking`` and ``Embedding``. Each follows the layer protocol of :mod:`lstmkit.layers.base`
(config round trip, masks, lazy input size).

Shape: ``B`` batch, ``T`` time steps, ``F`` features, ``U`` units.

Initialisation follows Keras, so that tutorials written against Keras behave the same:
``Dense`` weights are Glorot-uniform with zero bias, ``Embedding`` weights uniform in
[-0.05, 0.05].
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from lstmkit._validation import check_float, check_int
from lstmkit.layers.base import Layer, deserialize, register, serialize


def _linear(x):
    return x


def _hard_sigmoid(x):
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


def _softmax(x):
    return torch.softmax(x, dim=-1)


def _log_softmax(x):
    return torch.log_softmax(x, dim=-1)


# Activations by name; every value maps a tensor to a tensor of the same shape. Named functions,
# not lambdas: a layer keeps its activation, and pickle (torch.save of a whole model) cannot
# store a lambda.
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": _linear,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "silu": F.silu,
    "swish": F.silu,
    "leaky_relu": F.leaky_relu,
    "exponential": torch.exp,
}


def get_activation(name: str | None, owner: str = "activation") -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation function called ``name`` (``None`` means linear).

    >>> get_activation("relu")(torch.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    if name is None:
        return _ACTIVATIONS["linear"]
    if not isinstance(name, str):
        raise TypeError(
            f"{owner}: `activation` must be a name such as 'relu' or None, got {name!r} "
            f"({type(name).__name__}). For a custom function, use a torch module in the model instead."
        )
    if name not in _ACTIVATIONS:
        listed = ", ".join(repr(k) for k in _ACTIVATIONS)
        raise ValueError(f"{owner}: unknown `activation` {name!r}. Expected one of: {listed}, or None.")
    return _ACTIVATIONS[name]


def _check_rank(owner: str, x: torch.Tensor, minimum: int, expected: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner}: expected a torch.Tensor input, got {type(x).__name__}.")
    if x.dim() < minimum:
        raise ValueError(f"{owner}: expected input of shape {expected}, got {tuple(x.shape)}.")


@register
class Dense(Layer):
    """A fully connected layer on the last axis: ``y = activation(x W^T + b)``.

    Works on ``(B, F)`` and on sequences ``(B, T, F)`` alike (each step gets the same weights).
    With ``input_size=None`` the weights are created on the first call.

    Parameters are named as in ``torch.nn.Linear``: ``weight`` ``(U, F)`` and ``bias`` ``(U,)``.

    >>> layer = Dense(3, activation="sigmoid", input_size=4)
    >>> layer(torch.zeros(2, 5, 4)).shape
    torch.Size([2, 5, 3])
    >>> Dense.from_config(layer.get_config()).get_config() == layer.get_config()
    True
    """

    supports_masking = True

    def __init__(self, units: int, activation: str | None = None, input_size: int | None = None,
                 use_bias: bool = True):
        super().__init__()
        self.units = check_int("Dense", "units", units, minimum=1)
        self.input_size = check_int("Dense", "input_size", input_size, minimum=1, allow_none=True)
        self.activation = activation
        self._act = get_activation(activation, "Dense")
        self.use_bias = bool(use_bias)
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        if self.input_size is not None:
            self._build(self.input_size)

    @property
    def built(self) -> bool:
        return self.weight is not None

    def _build(self, input_size: int) -> None:
        self.input_size = input_size
        weight = torch.empty(self.units, input_size)
        nn.init.xavier_uniform_(weight)
        self.weight = nn.Parameter(weight)
        if self.use_bias:
            self.bias = nn.Parameter(torch.zeros(self.units))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_rank("Dense", x, 2, "(batch, ..., features)")
        if self.weight is None:
            self._build(x.shape[-1])
            self.to(device=x.device, dtype=x.dtype if x.is_floating_point() else None)
        elif x.shape[-1] != self.input_size:
            expected = "(batch, ..., {})".format(self.input_size)
            raise ValueError(f"Dense: expected input of shape {expected}, got {tuple(x.shape)}.")
        return self._act(F.linear(x, self.weight, self.bias))

    def get_config(self) -> dict[str, Any]:
        return {"units": self.units, "activation": self.activation, "input_size": self.input_size,
                "use_bias": self.use_bias}


@register
class Activation(Layer):
    """Applies a named activation element-wise (``softmax`` over the last axis).

    >>> Activation("relu")(torch.tensor([[-1.0, 1.0]]))
    tensor([[0., 1.]])
    """

    supports_masking = True

    def __init__(self, activation: str):
        super().__init__()
        self.activation = activation
        self._act = get_activation(activation, "Activation")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self._act(x)

    def get_config(self) -> dict[str, Any]:
        return {"activation": self.activation}


@register
class Dropout(Layer):
    """Zeroes each element with probability ``rate`` while training, scaling the rest by 1/(1-rate).

    Inactive in evaluation mode (``model.eval()``, ``predict``, ``evaluate``).

    >>> layer = Dropout(0.5).eval()
    >>> layer(torch.ones(2, 3))
    tensor([[1., 1., 1.],
            [1., 1., 1.]])
    """

    supports_masking = True

    def __init__(self, rate: float):
        super().__init__()
        self.rate = check_float("Dropout", "rate", rate, low=0.0, high=1.0, high_inclusive=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return F.dropout(x, self.rate, self.training)

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate}


@register
class Flatten(Layer):
    """Flattens everything but the batch axis: ``(B, d1, d2, ...) -> (B, d1 * d2 * ...)``.

    A mask on the input is dropped: the output has no time axis.

    >>> Flatten()(torch.zeros(2, 3, 4)).shape
    torch.Size([2, 12])
    """

    supports_masking = True

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_rank("Flatten", x, 1, "(batch, ...)")
        return x.reshape(x.shape[0], -1)

    def compute_mask(self, x: torch.Tensor, mask: torch.Tensor | None) -> None:
        return None

    def get_config(self) -> dict[str, Any]:
        return {}


@register
class RepeatVector(Layer):
    """Repeats a vector ``n`` times along a new time axis: ``(B, F) -> (B, n, F)``.

    The bridge between an encoder that returns one vector and a decoder that runs over ``n`` steps.

    >>> RepeatVector(3)(torch.tensor([[1.0, 2.0]]))
    tensor([[[1., 2.],
             [1., 2.],
             [1., 2.]]])
    """

    supports_masking = True

    def __init__(self, n: int):
        super().__init__()
        self.n = check_int("RepeatVector", "n", n, minimum=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_rank("RepeatVector", x, 2, "(batch, features)")
        if x.dim() != 2:
            raise ValueError(f"RepeatVector: expected input of shape (batch, features), got {tuple(x.shape)}.")
        return x.unsqueeze(1).expand(-1, self.n, -1)

    def compute_mask(self, x: torch.Tensor, mask: torch.Tensor | None) -> None:
        return None

    def get_config(self) -> dict[str, Any]:
        return {"n": self.n}


@register
class TimeDistributed(Layer):
    """Applies ``layer`` to every time step: ``(B, T, ...) -> (B, T, ...)``, one set of weights.

    The steps are folded into the batch (``(B * T, ...)``), so any layer that takes a batch works.

    >>> td = TimeDistributed(Dense(2, input_size=3))
    >>> td(torch.zeros(4, 5, 3)).shape
    torch.Size([4, 5, 2])
    """

    supports_masking = True

    def __init__(self, layer: Layer):
        super().__init__()
        if not isinstance(layer, nn.Module):
            raise TypeError(f"TimeDistributed: `layer` must be a layer, got {type(layer).__name__}.")
        self.layer = layer

    @property
    def built(self) -> bool:
        return getattr(self.layer, "built", True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_rank("TimeDistributed", x, 3, "(batch, time, ...)")
        b, t = x.shape[:2]
        y = self.layer(x.reshape(b * t, *x.shape[2:]))  # (B*T, ...)
        return y.reshape(b, t, *y.shape[1:])

    def get_config(self) -> dict[str, Any]:
        return {"layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TimeDistributed":
        return cls(deserialize(config["layer"]))


@register
class Masking(Layer):
    """Marks time steps whose features all equal ``mask_value`` as padding.

    The mask (``(B, T)`` bool, True where a step is real) goes to the layers after it; the output
    is the input with masked steps set to zero.

    >>> x = torch.tensor([[[1.0], [0.0], [2.0]]])
    >>> Masking(0.0).compute_mask(x, None)
    tensor([[ True, False,  True]])
    """

    supports_masking = True

    def __init__(self, mask_value: float = 0.0):
        super().__init__()
        if isinstance(mask_value, float) and mask_value != mask_value:
            raise ValueError("Masking: `mask_value` must not be NaN (NaN equals nothing, so no step would be "
                             "masked). For steps marked missing with NaN, use lstmkit.data.mark_missing(x): it "
                             "fills them and returns their mask, to pass as `mask=`.")
        self.mask_value = check_float("Masking", "mask_value", mask_value)

    def compute_mask(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_rank("Masking", x, 3, "(batch, time, features)")
        return (x != self.mask_value).any(dim=-1)  # (B, T)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        keep = self.compute_mask(x, mask)
        return x * keep.unsqueeze(-1).to(x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"mask_value": self.mask_value}


@register
class Embedding(Layer):
    """Maps integer ids ``(B, T)`` to vectors ``(B, T, output_dim)``.

    With ``mask_zero=True`` id 0 is padding: its steps are masked for the layers after it, so the
    vocabulary's real ids start at 1 (``input_dim`` counts the padding id).

    >>> emb = Embedding(10, 4, mask_zero=True)
    >>> ids = torch.tensor([[3, 5, 0]])
    >>> emb(ids).shape, emb.compute_mask(ids, None)
    (torch.Size([1, 3, 4]), tensor([[ True,  True, False]]))
    """

    supports_masking = True

    def __init__(self, input_dim: int, output_dim: int, mask_zero: bool = False):
        super().__init__()
        self.input_dim = check_int("Embedding", "input_dim", input_dim, minimum=1)
        self.output_dim = check_int("Embedding", "output_dim", output_dim, minimum=1)
        self.mask_zero = bool(mask_zero)
        self.weight = nn.Parameter(torch.empty(self.input_dim, self.output_dim).uniform_(-0.05, 0.05))

    def _check_ids(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"Embedding: expected integer ids (an int64 tensor), got {got}. "
                            "Encode the symbols as integers first.")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.input_dim):
            raise ValueError(f"Embedding: ids must be in [0, {self.input_dim - 1}] (`input_dim`={self.input_dim}), "
                             f"got values in [{int(x.min())}, {int(x.max())}]. Raise `input_dim` to the vocabulary size.")

    def compute_mask(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor | None:
        if not self.mask_zero:
            return mask
        return x != 0  # (B, T)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self._check_ids(x)
        return F.embedding(x, self.weight)

    def get_config(self) -> dict[str, Any]:
        return {"input_dim": self.input_dim, "output_dim": self.output_dim, "mask_zero": self.mask_zero}
