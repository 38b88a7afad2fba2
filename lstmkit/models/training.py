"""The pieces of the training loop that ``Model.fit`` composes: input conversion, batching,
recurrent state bookkeeping, and truncated back-propagation through time.

Truncated BPTT follows Williams & Peng (1990), "An efficient gradient-based algorithm for on-line
training of recurrent network trajectories", Neural Computation 2(4): BPTT(h; h') updates the
weights every h' steps, back-propagating through the last h steps. Here ``tbptt=(k1, k2)`` means
h' = k1 and h = k2 (k2 >= k1); ``tbptt=k`` is ``(k, k)``: chunks of k steps with the state carried
across chunk boundaries, detached.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from lstmkit._validation import check_int


def as_tensor(owner: str, name: str, value, float_dtype: torch.dtype) -> torch.Tensor:
    """``value`` (ndarray, tensor, nested list, pandas object) as a tensor on the CPU or where it is.

    Floating and boolean data become ``float_dtype``; integer data become int64 (ids, class labels).
    """
    if isinstance(value, torch.Tensor):
        tensor = value
    elif hasattr(value, "to_numpy"):  # pandas
        tensor = as_tensor(owner, name, value.to_numpy(), float_dtype)
    elif isinstance(value, (np.ndarray, list, tuple)):
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind in "USV":
            raise TypeError(f"{owner}: `{name}` must hold numbers, got an array of {array.dtype}. "
                            "Encode the data as numbers first (see lstmkit.data).")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    else:
        raise TypeError(f"{owner}: `{name}` must be a NumPy array, a torch tensor or a DataLoader, "
                        f"got {type(value).__name__}.")
    if tensor.is_floating_point() or tensor.dtype == torch.bool:
        return tensor.to(float_dtype)
    if tensor.is_complex():
        raise TypeError(f"{owner}: `{name}` must be real, got {tensor.dtype}.")
    return tensor.long()


def check_tbptt(tbptt) -> tuple[int, int] | None:
    """``tbptt`` as ``(k1, k2)``, or None."""
    if tbptt is None:
        return None
    if isinstance(tbptt, (tuple, list)) and len(tbptt) == 2:
        k1 = check_int("fit", "tbptt[0]", tbptt[0], minimum=1)
        k2 = check_int("fit", "tbptt[1]", tbptt[1], minimum=1)
        if k2 < k1:
            raise ValueError(f"fit: `tbptt`=(k1, k2) needs k2 >= k1 (update every k1 steps, back-propagate "
                             f"through the last k2), got ({k1}, {k2}).")
        return k1, k2
    if isinstance(tbptt, (tuple, list)):
        raise ValueError(f"fit: `tbptt` must be k or (k1, k2), got {tbptt!r}.")
    k = check_int("fit", "tbptt", tbptt, minimum=1)
    return k, k


class ArrayBatches:
    """In-memory ``(x, y)`` served in batches, in order or shuffled with torch's generator."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None, batch_size: int):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.n = x.shape[0]

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def iterate(self, shuffle: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        bs = self.batch_size
        if shuffle and self.n > 1:
            order = torch.randperm(self.n)
            for start in range(0, self.n, bs):
                idx = order[start:start + bs]
                yield self.x[idx], (None if self.y is None else self.y[idx])
        elif self.n <= bs:
            yield self.x, self.y  # one batch: no slicing
        else:
            for start in range(0, self.n, bs):
                yield self.x[start:start + bs], (None if self.y is None else self.y[start:start + bs])


class LoaderBatches:
    """Batches from a ``torch.utils.data.DataLoader`` yielding ``(x, y)`` (or ``x`` alone to predict)."""

    def __init__(self, loader, owner: str, float_dtype: torch.dtype, need_targets: bool):
        self.loader, self.owner, self.float_dtype, self.need_targets = loader, owner, float_dtype, need_targets

    def __len__(self) -> int:
        try:
            return len(self.loader)
        except TypeError:
            return 0

    def iterate(self, shuffle: bool = False):
        for item in self.loader:
            if isinstance(item, (tuple, list)) and len(item) == 2:
                xb, yb = item
            elif isinstance(item, (tuple, list)) and len(item) == 1:
                xb, yb = item[0], None
            elif isinstance(item, torch.Tensor):
                xb, yb = item, None
            else:
                raise TypeError(f"{self.owner}: the DataLoader must yield (x, y) pairs, got "
                                f"{type(item).__name__}{'' if not isinstance(item, (tuple, list)) else ' of length ' + str(len(item))}.")
            if yb is None and self.need_targets:
                raise TypeError(f"{self.owner}: the DataLoader must yield (x, y) pairs to train or evaluate; "
                                "it yielded inputs only.")
            yield (as_tensor(self.owner, "x", xb, self.float_dtype),
                   None if yb is None else as_tensor(self.owner, "y", yb, self.float_dtype))


# ---------------------------------------------------------------------------------------------
# Recurrent state bookkeeping. A "state layer" is any module with `stateful`, `states` and
# `reset_states` (lstmkit's recurrent layers): its `states` can be read and assigned.

def state_layers(model: torch.nn.Module) -> list:
    return [m for m in model.modules()
            if m is not model and hasattr(m, "stateful") and hasattr(m, "states") and hasattr(m, "reset_states")]


def get_states(layers: list) -> list:
    return [None if m.states is None else tuple(s.detach() for s in m.states) for m in layers]


def set_states(layers: list, states: list) -> None:
    for m, s in zip(layers, states):
        if s is None:
            m.reset_states()
        else:
            m.states = s


@contextmanager
def carrying_states(layers: list):
    """Make every state layer stateful for the duration; afterwards non-stateful ones forget."""
    before = [m.stateful for m in layers]
    for m in layers:
        m.stateful = True
    try:
        yield
    finally:
        for m, was in zip(layers, before):
            m.stateful = was
            if not was:
                m.reset_states()


def tbptt_windows(total: int, k1: int, k2: int):
    """``(start, end)`` of each back-propagation window over ``total`` steps for BPTT(k2; k1).

    Windows end every k1 steps and reach back k2 steps; a last, shorter window (``total`` not a
    multiple of k1) starts where a full one would, so it reaches back ``k2 - k1`` steps past its
    new steps (with k1 = k2 it is just the remaining chunk).

    >>> list(tbptt_windows(5, 2, 3))
    [(0, 2), (1, 4), (3, 5)]
    """
    end = 0
    while end < total:
        start = max(0, end + k1 - k2)
        end = min(end + k1, total)
        yield start, end
