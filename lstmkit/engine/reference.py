"""The reference path: the cell's step function in a plain Python loop, differentiated by autograd.

This is the ground truth every fast path is tested against; it is also the only path that runs
a cell class lstmkit does not know (any ``nn.Module`` with the cell interface).
"""

from __future__ import annotations

import torch


def run_reference(cell, x: torch.Tensor, state: tuple[torch.Tensor, ...],
                  mask: torch.Tensor | None = None, recurrent_mask: torch.Tensor | None = None):
    """Run ``cell`` over ``x (B, T, I)`` from ``state``.

    A masked step (``mask[b, t]`` False) leaves the state unchanged and outputs zeros, so a padded
    batch gives the same results as each unpadded sequence run alone.

    Returns:
        ``y (B, T, P)`` and the final state.
    """
    outputs = []
    for t, x_t in enumerate(x.unbind(1)):
        h, new_state = cell(x_t, state, recurrent_mask)
        if mask is not None:
            m = mask[:, t, None]  # (B, 1)
            new_state = tuple(torch.where(m, new, old) for new, old in zip(new_state, state))
            h = torch.where(m, h, torch.zeros_like(h))
        outputs.append(h)
        state = new_state
    return torch.stack(outputs, dim=1), state
