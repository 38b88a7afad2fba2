"""``set_seed``: one call that makes a run reproducible."""

from __future__ import annotations

import random

import numpy as np
import torch

from lstmkit._validation import check_int


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's random number generators (CPU and every GPU).

    On the CPU, with the same seed, data and code, training gives the same weights bit for bit
    (``fit`` draws its shuffling from torch's generator). GPU kernels may still differ from run to
    run unless ``torch.use_deterministic_algorithms(True)`` is also set.

    >>> set_seed(0); a = torch.rand(1)
    >>> set_seed(0); bool(torch.rand(1) == a)
    True
    """
    seed = check_int("set_seed", "seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
