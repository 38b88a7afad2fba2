"""Composite layers for encoder-decoder models: ``Seq2Seq`` (teacher forcing, optional attention)
and ``Parallel`` (several stacks on one input, outputs joined).

Both are ordinary registered layers, so a ``Sequential`` holding them saves and loads by config.

``Seq2Seq`` reads token ids. ``lstmkit.Model`` feeds a model one input tensor, so the source and the
target travel together: ``x = [source ids | target ids]``, shape ``(B, S + out_steps)``
(:func:`lstmkit.zoo.seq2seq_input` builds it). In training mode the decoder reads the target
shifted right by one step behind a start token (teacher forcing); in evaluation mode
(``evaluate``, ``predict``) the target part is ignored and the decoder feeds back its own most
likely token, step by step, so the reported accuracy is that of free-running decoding.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lstmkit._validation import check_choice, check_int
from lstmkit.layers.attention import SCORES, Attention
from lstmkit.layers.base import Layer, deserialize, register, serialize
from lstmkit.layers.core import Dense, Embedding
from lstmkit.layers.recurrent import LSTM


@register
class Seq2Seq(Layer):
    """An LSTM encoder-decoder over token ids; the encoder's final state starts the decoder.

    Args:
        input_dim: the source vocabulary size (ids ``0 .. input_dim - 1``).
        output_dim: the target vocabulary size; the output is a softmax over it.
        out_steps: the decoder length (tokens produced per sequence), >= 1.
        units: LSTM units of the encoder and the decoder.
        embed_dim: width of the source and target embeddings.
        attention: None (plain encoder-decoder), or a score of :class:`Attention`: ``"additive"``
            (Bahdanau) or ``"dot"`` / ``"general"`` (Luong). The decoder's output at step t attends
            over the encoder's outputs and is combined with the context as in Luong et al. 2015:
            ``tanh(W_c [context_t; h_t])``.

    Shape: ``x (B, S + out_steps)`` int64 -> ``(B, out_steps, output_dim)`` probabilities.
    After each call ``last_attention`` holds the weights ``(B, out_steps, S)`` (None without
    attention).

    >>> layer = Seq2Seq(input_dim=6, output_dim=6, out_steps=3, units=8, embed_dim=4, attention="dot")
    >>> x = torch.tensor([[1, 2, 3, 4, 0, 0, 0]])          # source 1 2 3 4, target unknown
    >>> layer.eval()(x).shape, layer.last_attention.shape
    (torch.Size([1, 3, 6]), torch.Size([1, 3, 4]))
    """

    def __init__(self, input_dim: int, output_dim: int, out_steps: int, units: int = 64, embed_dim: int = 32,
                 attention: str | None = None):
        super().__init__()
        self.input_dim = check_int("Seq2Seq", "input_dim", input_dim, minimum=1)
        self.output_dim = check_int("Seq2Seq", "output_dim", output_dim, minimum=1)
        if isinstance(out_steps, int) and not isinstance(out_steps, bool) and out_steps < 1:
            raise ValueError(f"Seq2Seq: `out_steps` (the decoder length) must be >= 1, got {out_steps}. "
                             "A decoder that produces no step has nothing to learn.")
        self.out_steps = check_int("Seq2Seq", "out_steps", out_steps, minimum=1)
        self.units = check_int("Seq2Seq", "units", units, minimum=1)
        self.embed_dim = check_int("Seq2Seq", "embed_dim", embed_dim, minimum=1)
        self.attention = None if attention is None else check_choice("Seq2Seq", "attention", attention, SCORES)
        self.source_embedding = Embedding(self.input_dim, self.embed_dim)
        # One extra id, output_dim, is the start token the decoder reads first.
        self.target_embedding = Embedding(self.output_dim + 1, self.embed_dim)
        self.encoder = LSTM(self.units, input_size=self.embed_dim, return_sequences=True, return_state=True)
        self.decoder = LSTM(self.units, input_size=self.embed_dim, return_sequences=True, return_state=True)
        if self.attention is not None:
            self.attend = Attention(self.attention, units=self.units, query_size=self.units, key_size=self.units)
            self.combine = Dense(self.units, activation="tanh", input_size=2 * self.units)
        self.readout = Dense(self.output_dim, activation="softmax", input_size=self.units)
        self.__dict__["last_attention"] = None

    def _split(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.dtype == torch.bool or x.dim() != 2:
            got = f"{x.dtype} of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"Seq2Seq: expected integer ids of shape (batch, source_steps + {self.out_steps}): the "
                            f"source followed by the target (lstmkit.zoo.seq2seq_input builds it), got {got}.")
        steps = x.shape[1] - self.out_steps
        least = 2 if self.attention else 1
        if steps < least:
            why = " (attention needs at least 2 source steps to choose between)" if self.attention else ""
            raise ValueError(f"Seq2Seq: `x` has {x.shape[1]} steps, which leaves {steps} source steps after the "
                             f"{self.out_steps} target steps; expected at least {least}{why}. Pack the input with "
                             "lstmkit.zoo.seq2seq_input(source, target).")
        source, target = x[:, :steps], x[:, steps:]
        for name, ids, size, arg in (("source", source, self.input_dim, "input_dim"),
                                     ("target", target, self.output_dim, "output_dim")):
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= size):
                raise ValueError(f"Seq2Seq: the {name} ids must lie in [0, {size - 1}] (`{arg}`={size}), got values "
                                 f"in [{int(ids.min())}, {int(ids.max())}]. The vocabulary does not match the data: "
                                 f"build the model with `{arg}`={int(ids.max()) + 1} or re-encode the data.")
        return source, target

    def _read(self, h: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Output probabilities from decoder outputs ``h (B, T, H)`` and encoder outputs ``(B, S, H)``."""
        if self.attention is None:
            return self.readout(h)
        context, weights = self.attend(h, memory)
        self.__dict__["last_attention"] = weights.detach()
        return self.readout(self.combine(torch.cat([context, h], dim=-1)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        source, target = self._split(x)
        memory, h, c = self.encoder(self.source_embedding(source))  # (B, S, H), (B, H), (B, H)
        B = x.shape[0]
        start = torch.full((B, 1), self.output_dim, dtype=torch.long, device=x.device)
        if self.training:
            previous = torch.cat([start, target[:, :-1]], dim=1)  # (B, out_steps): teacher forcing
            out, _, _ = self.decoder(self.target_embedding(previous), initial_state=(h, c))
            return self._read(out, memory)
        return self.decode(memory, (h, c), start[:, 0])

    def decode(self, memory: torch.Tensor, state, token: torch.Tensor) -> torch.Tensor:
        """Greedy step-by-step decoding: each step reads the previous step's most likely token."""
        cell = self.decoder.cell
        probs, weights = [], []
        for _ in range(self.out_steps):
            h, state = cell(self.target_embedding(token), state)  # (B, H)
            p = self._read(h.unsqueeze(1), memory)  # (B, 1, V)
            if self.attention is not None:
                weights.append(self.last_attention)
            probs.append(p)
            token = p[:, 0].argmax(-1)
        if weights:
            self.__dict__["last_attention"] = torch.cat(weights, dim=1)
        return torch.cat(probs, dim=1)

    def get_config(self) -> dict[str, Any]:
        return {"input_dim": self.input_dim, "output_dim": self.output_dim, "out_steps": self.out_steps,
                "units": self.units, "embed_dim": self.embed_dim, "attention": self.attention}


@register
class Parallel(Layer):
    """Runs several stacks of layers on the same input and joins their outputs along ``axis``.

    The composite LSTM autoencoder uses it: one decoder reconstructs the input, another predicts
    what follows, and the outputs are joined along time.

    Args:
        branches: a list of stacks, each a list of layers applied in order.
        axis: the axis to concatenate on, counting the batch axis as 0 (1: time).

    >>> from lstmkit.layers import Dense, RepeatVector
    >>> layer = Parallel([[RepeatVector(2), Dense(3)], [RepeatVector(4), Dense(3)]], axis=1)
    >>> layer(torch.zeros(5, 7)).shape
    torch.Size([5, 6, 3])
    """

    def __init__(self, branches: list[list[Layer]], axis: int = 1):
        super().__init__()
        if not isinstance(branches, (list, tuple)) or not branches or not all(
                isinstance(b, (list, tuple)) and b and all(isinstance(m, nn.Module) for m in b) for b in branches):
            raise TypeError("Parallel: `branches` must be a non-empty list of non-empty lists of layers, "
                            f"got {branches!r}.")
        self.axis = check_int("Parallel", "axis", axis, minimum=1)
        self.branches = nn.ModuleList(nn.ModuleList(b) for b in branches)

    @property
    def built(self) -> bool:
        return all(getattr(m, "built", True) for b in self.branches for m in b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for branch in self.branches:
            y = x
            for layer in branch:
                y = layer(y)
            outputs.append(y)
        try:
            return torch.cat(outputs, dim=self.axis)
        except RuntimeError:
            shapes = ", ".join(str(tuple(o.shape)) for o in outputs)
            raise ValueError(f"Parallel: the branches' outputs {shapes} cannot be joined along `axis`={self.axis}; "
                             "every other axis must agree.") from None

    def get_config(self) -> dict[str, Any]:
        return {"branches": [[serialize(m) for m in b] for b in self.branches], "axis": self.axis}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Parallel":
        return cls([[deserialize(s) for s in b] for b in config["branches"]], axis=config.get("axis", 1))
