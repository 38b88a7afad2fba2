"""The layer protocol every lstmkit layer follows, and the registry that rebuilds layers by name.

A layer is a ``torch.nn.Module`` with three additions:

- ``get_config()`` returns a JSON-safe dict of constructor arguments, and
  ``from_config(config)`` rebuilds an equal (untrained) layer from it;
- ``supports_masking``: whether ``forward`` takes a ``mask=`` keyword (a boolean ``(B, T)``
  tensor, True where a step is real). Layers that create or transform a mask (``Masking``,
  ``Embedding(mask_zero=True)``, recurrent layers with ``return_sequences``) implement
  ``compute_mask(x, mask)``; containers such as ``Sequential`` pass it along;
- ``reset_states()`` on stateful layers (a no-op elsewhere).

Layers that infer their input size on the first call (``input_size=None``) have no weights
until then; ``built`` says whether they have them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

_REGISTRY: dict[str, type] = {}


def register(cls):
    """Class decorator: make ``cls`` loadable by name from a saved config."""
    _REGISTRY[cls.__name__] = cls
    return cls


def get_layer_class(name: str) -> type:
    """Return the registered layer class called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"Unknown layer class {name!r}. Expected one of: {known}.") from None


def serialize(layer: "Layer") -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for a registered layer."""
    if not isinstance(layer, Layer):
        raise TypeError(
            f"Cannot serialize {type(layer).__name__}: only lstmkit layers have a config. "
            "Wrap plain torch modules with lstmkit.Model and save their weights instead."
        )
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(spec: dict[str, Any]) -> "Layer":
    """Rebuild a layer from ``serialize``'s output."""
    if not isinstance(spec, dict) or "class_name" not in spec or "config" not in spec:
        raise ValueError(f"A layer spec must be a dict with 'class_name' and 'config', got {spec!r}.")
    return get_layer_class(spec["class_name"]).from_config(spec["config"])


class Layer(nn.Module):
    """Base class of lstmkit layers (see the module docstring for the protocol)."""

    supports_masking: bool = False

    @property
    def built(self) -> bool:
        return True

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} does not define get_config().")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Layer":
        return cls(**config)

    def compute_mask(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        """The mask for this layer's output; by default, the input mask passes through."""
        return mask

    def reset_states(self) -> None:
        """Forget any carried state (stateful recurrent layers); a no-op here."""

    def extra_repr(self) -> str:
        try:
            cfg = self.get_config()
        except NotImplementedError:
            return ""
        return ", ".join(f"{k}={v!r}" for k, v in cfg.items())
