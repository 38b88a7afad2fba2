"""``Sequential``: a model that is a list of layers, each feeding the next.

>>> import lstmkit
>>> from lstmkit.layers import Dense
>>> model = lstmkit.Sequential([Dense(8, activation="relu"), Dense(1)], input_shape=(3,))
>>> model.predict([[0.0, 1.0, 2.0]]).shape
(1, 1)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lstmkit._validation import check_int
from lstmkit.layers.base import deserialize, serialize
from lstmkit.models.model import Model


class Sequential(Model):
    """A stack of layers: ``y = layers[-1](... layers[0](x))``, with masks passed along.

    Args:
        layers: lstmkit layers (or plain torch modules, which cannot be saved by config).
        input_shape: the shape of one sample without the batch axis, e.g. ``(timesteps, features)``;
            ``timesteps`` may be None for sequences of any length. When given, the model is built
            (all weights created) at once and inputs are checked against it.
        batch_size: fix the batch size, as stateful layers need (the tutorials' ``batch_input_shape``).

    A layer with ``supports_masking`` receives the mask produced by the layers before it
    (``Masking``, ``Embedding(mask_zero=True)``) as ``mask=``, and its ``compute_mask`` gives the
    mask for the next; a layer that does not support masking may not receive one.
    """

    def __init__(self, layers: list[nn.Module] | None = None, input_shape: tuple | None = None,
                 batch_size: int | None = None):
        super().__init__()
        self.layers = nn.ModuleList()
        if input_shape is not None:
            if isinstance(input_shape, int):
                input_shape = (input_shape,)
            if not isinstance(input_shape, (tuple, list)) or not input_shape or not all(
                    d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in input_shape):
                raise ValueError(f"Sequential: `input_shape` must be a tuple of positive sizes without the batch "
                                 f"axis, e.g. (timesteps, features), got {input_shape!r}.")
            if any(d is None for d in input_shape[1:]):
                raise ValueError(f"Sequential: only the first entry (timesteps) of `input_shape` may be None, "
                                 f"got {tuple(input_shape)!r}.")
            input_shape = tuple(input_shape)
        self.input_shape = input_shape
        self.batch_size = check_int("Sequential", "batch_size", batch_size, minimum=1, allow_none=True)
        self._output_shapes: list[tuple] | None = None
        if layers is not None and not isinstance(layers, (list, tuple)):
            raise TypeError(f"Sequential: `layers` must be a list of layers, got {type(layers).__name__}.")
        for layer in layers or []:
            self.add(layer, _build=False)
        if self.input_shape is not None and len(self.layers):
            self.build()

    def add(self, layer: nn.Module, _build: bool = True) -> None:
        """Append ``layer`` (built at once when the model has an ``input_shape``)."""
        if not isinstance(layer, nn.Module):
            raise TypeError(f"Sequential: expected a layer (a torch.nn.Module), got {type(layer).__name__}. "
                            "Did you pass a layer class instead of an instance, e.g. Dense instead of Dense(1)?")
        self.layers.append(layer)
        self._output_shapes = None
        self.__dict__.pop("_built_seen", None)
        if _build and self.input_shape is not None:
            self.build()

    def build(self) -> None:
        """Create every weight with one pass of zeros of ``input_shape``."""
        if self.input_shape is None:
            raise ValueError("Sequential: build() needs `input_shape`; or call fit() to build on the data.")
        dtype = torch.long if self._takes_ids() else torch.float32
        self._build_with_shape(list(self.input_shape), self.batch_size or 1, dtype)

    def _takes_ids(self) -> bool:
        from lstmkit.layers.core import Embedding

        return len(self.layers) > 0 and isinstance(self.layers[0], Embedding)

    def _check_input(self, x: torch.Tensor) -> None:
        expected = self.input_shape
        if expected is not None:
            shape = x.shape
            ok = len(shape) == len(expected) + 1
            if ok:  # a plain loop: a generator in all() costs ~1 us of every small predict
                for d, s in zip(expected, shape[1:]):
                    if d is not None and d != s:
                        ok = False
                        break
            if not ok:
                want = ", ".join("time" if d is None else str(d) for d in expected)
                raise ValueError(f"Sequential: expected input of shape (batch, {want}), got {tuple(x.shape)}.")
        if self.batch_size is not None and x.shape[0] != self.batch_size:
            raise ValueError(f"Sequential: the model has a fixed `batch_size`={self.batch_size} (for its stateful "
                             f"layers), got a batch of {x.shape[0]}. Use batch_size={self.batch_size} in "
                             "fit/evaluate/predict.")

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"Sequential: expected a torch.Tensor input, got {type(x).__name__}.")
        self._check_input(x)
        layers = self._modules["layers"]._modules.values()  # self.layers costs ~1.3 us (nn.Module.__getattr__)
        if not layers:
            raise ValueError("Sequential: the model has no layers; add some with model.add(layer).")
        record = self._output_shapes is None
        shapes = []
        mask = None
        for layer in layers:
            if getattr(layer, "supports_masking", False):
                next_mask = layer.compute_mask(x, mask)
                x = layer(x) if mask is None else layer(x, mask=mask)  # a keyword costs microseconds
                mask = next_mask
            else:
                if mask is not None:
                    raise TypeError(f"Sequential: {type(layer).__name__} does not support masking but receives a "
                                    "mask from an earlier Masking or Embedding(mask_zero=True) layer. Remove the "
                                    "mask, or use a layer with supports_masking.")
                x = layer(x)
            if record:
                shapes.append(_shape_of(x))
        if record:
            self._output_shapes = shapes
        return x, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)[0]

    def summary(self, print_fn=print) -> str:
        """Print (with ``print_fn``) and return the layers, their output shapes and parameter counts.

        >>> import lstmkit
        >>> model = lstmkit.Sequential([lstmkit.layers.Dense(2)], input_shape=(3,))
        >>> text = model.summary(print_fn=None)
        >>> "Total params: 8" in text
        True
        """
        shapes = self._output_shapes or [None] * len(self.layers)
        rows = []
        for i, (layer, shape) in enumerate(zip(self.layers, shapes)):
            if shape is None:
                shown = "?"
            else:
                batch = self.batch_size if self.batch_size is not None else None
                shown = str((batch, *shape[1:])) if isinstance(shape, tuple) else str(shape)
            params = sum(p.numel() for p in layer.parameters() if not isinstance(p, nn.parameter.UninitializedParameter))
            rows.append((f"{i}", type(layer).__name__, shown, params))
        return self._print_table(rows, print_fn)

    def get_config(self) -> dict[str, Any]:
        return {"layers": [serialize(layer) for layer in self.layers],
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "batch_size": self.batch_size}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Sequential":
        shape = config.get("input_shape")
        return cls([deserialize(spec) for spec in config["layers"]],
                   input_shape=None if shape is None else tuple(shape), batch_size=config.get("batch_size"))


def _shape_of(x) -> tuple | str:
    if isinstance(x, torch.Tensor):
        return tuple(x.shape)
    if isinstance(x, (tuple, list)):
        return "(" + ", ".join(str(_shape_of(t)) for t in x) + ")"
    return type(x).__name__
