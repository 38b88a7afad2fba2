"""Convolution and pooling layers, channels-last as the rest of lstmkit (features on the last axis).

``Conv1D`` and ``MaxPooling1D`` slide along the time axis of ``(B, T, C)``; ``Conv2D`` and
``MaxPooling2D`` over the rows and columns of images ``(B, H, W, C)``; ``GlobalAveragePooling1D``
and ``GlobalMaxPooling1D`` reduce ``(B, T, C)`` to ``(B, C)`` (the average over real steps only
when a mask arrives). Wrapped in ``TimeDistributed``, the 2-D layers read a sequence of images
``(B, T, H, W, C)``, the front end of a CNN-LSTM.

Shape: ``B`` batch, ``T`` time steps, ``C`` input channels, ``K`` ``filters``.
Parameters are named as in ``torch.nn.Conv1d``/``Conv2d``: ``weight (K, C, k)`` or
``(K, C, kh, kw)`` and ``bias (K,)``; weights start Glorot-uniform and biases at zero (Keras).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lstmkit._validation import check_choice, check_int
from lstmkit.layers.base import Layer, register
from lstmkit.layers.core import get_activation

PADDINGS_1D = ("valid", "same", "causal")
PADDINGS_2D = ("valid", "same")


def _check_input(owner: str, x, rank: int, expected: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner}: expected a torch.Tensor input, got {type(x).__name__}.")
    if x.dim() != rank:
        raise ValueError(f"{owner}: expected input of shape {expected}, got {tuple(x.shape)}.")
    if not x.is_floating_point():
        raise TypeError(f"{owner}: expected a floating-point input, got dtype {x.dtype}. Convert it with x.float().")


def _pair(owner: str, name: str, value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{owner}: `{name}` must be an integer or a pair (rows, columns), got {value!r}.")
        return check_int(owner, name, value[0], minimum=1), check_int(owner, name, value[1], minimum=1)
    v = check_int(owner, name, value, minimum=1)
    return v, v


class _Conv(Layer):
    """What Conv1D and Conv2D share: lazy weights, activation, config."""

    rank = 1

    def __init__(self, filters, activation, input_size):
        super().__init__()
        name = type(self).__name__
        self.filters = check_int(name, "filters", filters, minimum=1)
        self.activation = activation
        self._act = get_activation(activation, name)
        self.input_size = check_int(name, "input_size", input_size, minimum=1, allow_none=True)
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)

    @property
    def built(self) -> bool:
        return self.weight is not None

    def _kernel_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _build(self, channels: int, like: torch.Tensor | None = None) -> None:
        self.input_size = channels
        weight = torch.empty(self.filters, channels, *self._kernel_shape())
        nn.init.xavier_uniform_(weight)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(self.filters))
        if like is not None:
            self.to(device=like.device, dtype=like.dtype)

    def _check_channels(self, x: torch.Tensor, expected: str) -> None:
        if self.weight is None:
            self._build(x.shape[-1], x)
        elif x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected input of shape {expected} with "
                             f"{self.input_size} channels last, got {tuple(x.shape)}.")


@register
class Conv1D(_Conv):
    """A 1-D convolution along time: ``(B, T, C) -> (B, T', K)``.

    Args:
        filters: K, output channels.
        kernel_size: k, steps each filter spans.
        strides: step between windows.
        padding: ``"valid"`` (no padding: ``T' = (T - k) // strides + 1``), ``"same"``
            (``T' = ceil(T / strides)``) or ``"causal"`` (padding on the left only, so output
            ``t`` sees no step after ``t``).
        activation: a name (``"relu"``) or None.
        input_size: C; None infers it from the first input.

    >>> Conv1D(8, 3, activation="relu")(torch.zeros(2, 10, 4)).shape
    torch.Size([2, 8, 8])
    >>> Conv1D(8, 3, padding="causal")(torch.zeros(2, 10, 4)).shape
    torch.Size([2, 10, 8])
    """

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, padding: str = "valid",
                 activation: str | None = None, input_size: int | None = None):
        super().__init__(filters, activation, input_size)
        self.kernel_size = check_int("Conv1D", "kernel_size", kernel_size, minimum=1)
        self.strides = check_int("Conv1D", "strides", strides, minimum=1)
        self.padding = check_choice("Conv1D", "padding", padding, PADDINGS_1D)
        if self.input_size is not None:
            self._build(self.input_size)

    def _kernel_shape(self):
        return (self.kernel_size,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("Conv1D", x, 3, "(batch, time, channels)")
        self._check_channels(x, "(batch, time, channels)")
        k, s = self.kernel_size, self.strides
        z = x.transpose(1, 2)  # (B, C, T): torch's layout
        if self.padding == "causal":
            z = F.pad(z, (k - 1, 0))
        elif self.padding == "same":
            t = z.shape[-1]
            total = max((-(-t // s) - 1) * s + k - t, 0)
            z = F.pad(z, (total // 2, total - total // 2))
        if z.shape[-1] < k:
            raise ValueError(f"Conv1D: the input has {x.shape[1]} time steps, fewer than `kernel_size`={k}. "
                             "Use padding='same', a smaller kernel, or longer sequences.")
        return self._act(F.conv1d(z, self.weight, self.bias, stride=s).transpose(1, 2))  # (B, T', K)

    def get_config(self) -> dict[str, Any]:
        return {"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "activation": self.activation, "input_size": self.input_size}


@register
class Conv2D(_Conv):
    """A 2-D convolution over images, channels last: ``(B, H, W, C) -> (B, H', W', K)``.

    Args:
        filters: K, output channels.
        kernel_size: an integer or ``(rows, columns)``.
        strides: an integer or a pair.
        padding: ``"valid"`` or ``"same"`` (``"same"`` needs ``strides=1``).
        activation: a name or None.
        input_size: C; None infers it from the first input.

    >>> Conv2D(4, 3, padding="same")(torch.zeros(2, 8, 8, 1)).shape
    torch.Size([2, 8, 8, 4])
    """

    rank = 2

    def __init__(self, filters: int, kernel_size=3, strides=1, padding: str = "valid",
                 activation: str | None = None, input_size: int | None = None):
        super().__init__(filters, activation, input_size)
        self.kernel_size = _pair("Conv2D", "kernel_size", kernel_size)
        self.strides = _pair("Conv2D", "strides", strides)
        self.padding = check_choice("Conv2D", "padding", padding, PADDINGS_2D)
        if self.padding == "same" and self.strides != (1, 1):
            raise ValueError(f"Conv2D: padding='same' needs `strides`=1, got {self.strides}. "
                             "Use padding='valid' with strides, or a MaxPooling2D after the convolution.")
        if self.input_size is not None:
            self._build(self.input_size)

    def _kernel_shape(self):
        return self.kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("Conv2D", x, 4, "(batch, rows, columns, channels)")
        self._check_channels(x, "(batch, rows, columns, channels)")
        kh, kw = self.kernel_size
        if self.padding == "valid" and (x.shape[1] < kh or x.shape[2] < kw):
            raise ValueError(f"Conv2D: images of {x.shape[1]}x{x.shape[2]} are smaller than `kernel_size`="
                             f"{self.kernel_size}. Use padding='same' or a smaller kernel.")
        z = F.conv2d(x.permute(0, 3, 1, 2), self.weight, self.bias, stride=self.strides,
                     padding="same" if self.padding == "same" else 0)  # (B, K, H', W')
        return self._act(z.permute(0, 2, 3, 1))

    def get_config(self) -> dict[str, Any]:
        return {"filters": self.filters, "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "activation": self.activation, "input_size": self.input_size}


@register
class MaxPooling1D(Layer):
    """The maximum over windows of ``pool_size`` steps: ``(B, T, C) -> (B, T // pool_size, C)``.

    >>> MaxPooling1D(2)(torch.arange(6.0).reshape(1, 6, 1)).flatten().tolist()
    [1.0, 3.0, 5.0]
    """

    def __init__(self, pool_size: int = 2, strides: int | None = None):
        super().__init__()
        self.pool_size = check_int("MaxPooling1D", "pool_size", pool_size, minimum=1)
        self.strides = check_int("MaxPooling1D", "strides", strides, minimum=1, allow_none=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("MaxPooling1D", x, 3, "(batch, time, channels)")
        if x.shape[1] < self.pool_size:
            raise ValueError(f"MaxPooling1D: the input has {x.shape[1]} time steps, fewer than "
                             f"`pool_size`={self.pool_size}.")
        return F.max_pool1d(x.transpose(1, 2), self.pool_size, self.strides or self.pool_size).transpose(1, 2)

    def get_config(self) -> dict[str, Any]:
        return {"pool_size": self.pool_size, "strides": self.strides}


@register
class MaxPooling2D(Layer):
    """The maximum over ``pool_size`` windows of images: ``(B, H, W, C) -> (B, H // p, W // p, C)``.

    >>> MaxPooling2D(2)(torch.zeros(3, 8, 6, 2)).shape
    torch.Size([3, 4, 3, 2])
    """

    def __init__(self, pool_size=2, strides=None):
        super().__init__()
        self.pool_size = _pair("MaxPooling2D", "pool_size", pool_size)
        self.strides = None if strides is None else _pair("MaxPooling2D", "strides", strides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("MaxPooling2D", x, 4, "(batch, rows, columns, channels)")
        if x.shape[1] < self.pool_size[0] or x.shape[2] < self.pool_size[1]:
            raise ValueError(f"MaxPooling2D: images of {x.shape[1]}x{x.shape[2]} are smaller than `pool_size`="
                             f"{self.pool_size}.")
        z = F.max_pool2d(x.permute(0, 3, 1, 2), self.pool_size, self.strides or self.pool_size)
        return z.permute(0, 2, 3, 1)

    def get_config(self) -> dict[str, Any]:
        return {"pool_size": list(self.pool_size), "strides": None if self.strides is None else list(self.strides)}


@register
class GlobalAveragePooling1D(Layer):
    """The mean over time: ``(B, T, C) -> (B, C)``; with a mask, over the real steps only.

    >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> GlobalAveragePooling1D()(x, mask=torch.tensor([[True, True, False]]))
    tensor([[2.]])
    """

    supports_masking = True

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_input("GlobalAveragePooling1D", x, 3, "(batch, time, channels)")
        if mask is None:
            return x.mean(1)
        w = mask.to(x.dtype).unsqueeze(-1)  # (B, T, 1)
        return (x * w).sum(1) / w.sum(1).clamp_min(1.0)

    def compute_mask(self, x, mask):
        return None

    def get_config(self) -> dict[str, Any]:
        return {}


@register
class GlobalMaxPooling1D(Layer):
    """The maximum over time: ``(B, T, C) -> (B, C)``; with a mask, over the real steps only.

    >>> GlobalMaxPooling1D()(torch.tensor([[[1.0], [3.0], [2.0]]]))
    tensor([[3.]])
    """

    supports_masking = True

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_input("GlobalMaxPooling1D", x, 3, "(batch, time, channels)")
        if mask is not None:
            x = x.masked_fill(~mask.bool().unsqueeze(-1), float("-inf"))
        return x.amax(1)

    def compute_mask(self, x, mask):
        return None

    def get_config(self) -> dict[str, Any]:
        return {}
