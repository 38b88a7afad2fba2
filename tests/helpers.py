"""Shared helpers for the recurrent-core tests."""

import torch


def randomize(module, low=-0.5, high=0.5, seed=0):
    """Give every parameter fresh random values (so no test relies on an initialisation)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) * (high - low) + low)
    return module


def weighted_sum(outputs, seed=1):
    """A scalar that depends on every element of every tensor, with distinct random weights."""
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for out in outputs:
        total = total + (out * torch.randn(out.shape, generator=gen, dtype=out.dtype)).sum()
    return total


def max_diff(a, b):
    """The largest absolute difference over pairs of tensors; NaN anywhere counts as infinite
    (Python's max() would silently skip a NaN)."""
    worst = 0.0
    for x, y in zip(a, b):
        d = (x - y).abs()
        if not bool(torch.isfinite(d).all()):
            return float("inf")
        worst = max(worst, d.max().item())
    return worst
