r"""Attention over a sequence: each query step takes a weighted mean of the value steps.

For a query :math:`q_t` and keys/values :math:`k_1 \dots k_S` (an encoder's outputs):

.. math::

    e_{ts} = \mathrm{score}(q_t, k_s), \qquad
    a_{ts} = \frac{\exp e_{ts}}{\sum_{s'} \exp e_{ts'}}, \qquad
    c_t = \sum_s a_{ts} k_s

with the score

- ``"dot"`` (Luong et al. 2015): :math:`q_t^\top k_s`;
- ``"general"`` (Luong et al. 2015): :math:`q_t^\top W_a k_s`;
- ``"additive"`` (Bahdanau et al. 2015): :math:`v_a^\top \tanh(W_q q_t + W_k k_s)`.

Shape:
    B batch, T query steps, S key steps, Q query features, K key features, U ``units``.
    ``query (B, T, Q)``, ``keys (B, S, K)``, ``mask (B, S)`` (True = a real key step) ->
    ``context (B, T, K)`` and ``weights (B, T, S)`` (each row sums to 1).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lstmkit._validation import check_choice, check_int
from lstmkit.layers.base import Layer, register

SCORES = ("dot", "general", "additive")


@register
class Attention(Layer):
    """Attention of ``query`` steps over ``keys`` (used as the values too).

    Args:
        score: ``"dot"``, ``"general"`` or ``"additive"`` (see the module docstring).
        units: U, the width of the additive score's hidden layer (default: K).
        query_size: Q; None infers it (with ``key_size``) from the first call.
        key_size: K.

    The call returns ``(context, weights)``; the weights are what attention plots show.

    >>> att = Attention("additive", units=8)
    >>> context, weights = att(torch.zeros(2, 3, 5), torch.randn(2, 4, 5))
    >>> tuple(context.shape), tuple(weights.shape), bool(torch.allclose(weights.sum(-1), torch.ones(2, 3)))
    ((2, 3, 5), (2, 3, 4), True)
    """

    supports_masking = True

    def __init__(self, score: str = "dot", units: int | None = None, query_size: int | None = None,
                 key_size: int | None = None):
        super().__init__()
        self.score = check_choice("Attention", "score", score, SCORES)
        self.units = check_int("Attention", "units", units, minimum=1, allow_none=True)
        self.query_size = check_int("Attention", "query_size", query_size, minimum=1, allow_none=True)
        self.key_size = check_int("Attention", "key_size", key_size, minimum=1, allow_none=True)
        self._built = False
        if self.query_size is not None and self.key_size is not None:
            self._build(self.query_size, self.key_size)

    @property
    def built(self) -> bool:
        return self._built

    def _build(self, query_size: int, key_size: int, like: torch.Tensor | None = None) -> None:
        if self.score == "dot" and query_size != key_size:
            raise ValueError(f"Attention: the 'dot' score needs queries and keys of one size, got {query_size} "
                             f"and {key_size}. Use score='general' or 'additive', which learn a map between them.")
        self.query_size, self.key_size = query_size, key_size
        if self.score == "general":
            self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(query_size, key_size)))
        elif self.score == "additive":
            units = self.units or key_size
            self.weight_q = nn.Parameter(nn.init.xavier_uniform_(torch.empty(units, query_size)))
            self.weight_k = nn.Parameter(nn.init.xavier_uniform_(torch.empty(units, key_size)))
            self.bias = nn.Parameter(torch.zeros(units))
            self.v = nn.Parameter(nn.init.uniform_(torch.empty(units), -0.1, 0.1))
        self._built = True
        if like is not None:
            self.to(device=like.device, dtype=like.dtype)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """The unnormalised scores ``e (B, T, S)``."""
        if self.score == "dot":
            return query @ keys.transpose(1, 2)
        if self.score == "general":
            return (query @ self.weight) @ keys.transpose(1, 2)
        q = query @ self.weight_q.T  # (B, T, U)
        k = keys @ self.weight_k.T + self.bias  # (B, S, U)
        return torch.tanh(q.unsqueeze(2) + k.unsqueeze(1)) @ self.v  # (B, T, S)

    def forward(self, query: torch.Tensor, keys: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        for name, t in (("query", query), ("keys", keys)):
            if not isinstance(t, torch.Tensor) or t.dim() != 3 or not t.is_floating_point():
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"Attention: `{name}` must be a float tensor of shape (batch, time, features), "
                                 f"got {got}.")
        if query.shape[0] != keys.shape[0]:
            raise ValueError(f"Attention: `query` and `keys` must have the same batch size, got {query.shape[0]} "
                             f"and {keys.shape[0]}.")
        if keys.shape[1] < 2:
            raise ValueError(f"Attention: `keys` has {keys.shape[1]} time step; attention needs at least 2 steps to "
                             "choose between (over one step its weight is always 1 and it learns nothing). "
                             "Use a plain encoder-decoder, or give longer input sequences.")
        if not self._built:
            self._build(query.shape[-1], keys.shape[-1], query)
        elif (query.shape[-1], keys.shape[-1]) != (self.query_size, self.key_size):
            raise ValueError(f"Attention: expected `query` (batch, time, {self.query_size}) and `keys` (batch, time, "
                             f"{self.key_size}), got {tuple(query.shape)} and {tuple(keys.shape)}.")
        e = self.scores(query, keys)  # (B, T, S)
        if mask is not None:
            e = e.masked_fill(~mask.bool().unsqueeze(1), float("-inf"))
        weights = torch.softmax(e, dim=-1)
        return weights @ keys, weights  # (B, T, K), (B, T, S)

    def get_config(self) -> dict[str, Any]:
        return {"score": self.score, "units": self.units, "query_size": self.query_size, "key_size": self.key_size}
