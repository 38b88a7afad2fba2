"""The tasks the zoo's examples and tests learn: small generated problems with a known answer.

Every function takes a NumPy ``Generator`` (``rng``) so that a task is reproducible, and returns
arrays batch-first, ready for ``fit``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> source, target = reverse(rng, 4, steps=5, vocab=10)
>>> bool((target == source[:, ::-1]).all())
True
"""

from __future__ import annotations

import numpy as np

from lstmkit._validation import check_choice, check_int


def _common(n: int, steps: int, vocab: int, owner: str) -> None:
    check_int(owner, "n", n, minimum=1)
    check_int(owner, "steps", steps, minimum=1)
    check_int(owner, "vocab", vocab, minimum=2)


def random_ids(rng: np.random.Generator, n: int, steps: int, vocab: int) -> np.ndarray:
    """``(n, steps)`` random ids in ``[1, vocab)`` (0 is left free for padding)."""
    _common(n, steps, vocab, "random_ids")
    return rng.integers(1, vocab, size=(n, steps))


def echo(rng: np.random.Generator, n: int, steps: int, vocab: int, out_steps: int | None = None):
    """Echo: the target is the first ``out_steps`` ids of the source (all of it by default).

    With ``out_steps < steps`` this is the classic *partial* echo (the tutorial echoes the first
    2 of 5 random integers out of 100).
    """
    out_steps = steps if out_steps is None else check_int("echo", "out_steps", out_steps, minimum=1)
    if out_steps > steps:
        raise ValueError(f"echo: `out_steps`={out_steps} cannot exceed `steps`={steps}.")
    source = random_ids(rng, n, steps, vocab)
    return source, source[:, :out_steps].copy()


def reverse(rng: np.random.Generator, n: int, steps: int, vocab: int):
    """The target is the source reversed."""
    source = random_ids(rng, n, steps, vocab)
    return source, source[:, ::-1].copy()


def sort(rng: np.random.Generator, n: int, steps: int, vocab: int):
    """The target is the source sorted in increasing order."""
    source = random_ids(rng, n, steps, vocab)
    return source, np.sort(source, axis=1)


SEQ2SEQ_TASKS = {"echo": echo, "reverse": reverse, "sort": sort}


def seq2seq_task(name: str, rng: np.random.Generator, n: int, steps: int, vocab: int):
    """``(source, target)`` of the task called ``name`` (``"echo"``, ``"reverse"``, ``"sort"``)."""
    return SEQ2SEQ_TASKS[check_choice("seq2seq_task", "name", name, tuple(SEQ2SEQ_TASKS))](rng, n, steps, vocab)


def peaks(rng: np.random.Generator, n: int, steps: int):
    """Tag each step of a random sequence 1 where its value exceeds the *next* step's value.

    The tag of step t depends on step t + 1, so a model that reads only forwards must guess
    (at best about 75 % right); one that also reads backwards can be exact.

    Returns ``x (n, steps, 1)`` uniform in [0, 1) and ``y (n, steps, 1)`` in {0, 1} (the last step: 0).
    """
    check_int("peaks", "n", n, minimum=1)
    check_int("peaks", "steps", steps, minimum=2)
    x = rng.random((n, steps, 1)).astype(np.float32)
    y = np.zeros_like(x)
    y[:, :-1, 0] = x[:, :-1, 0] > x[:, 1:, 0]
    return x, y


def moving_line(rng: np.random.Generator, n: int, frames: int = 8, size: int = 10):
    """Videos of a vertical line that moves one column per frame, left or right.

    The classic CNN-LSTM task: a convolution finds the line in each frame, the LSTM reads its
    motion. The line starts at a random column and a random height span; the label is 1 when it
    moves right. Background noise keeps single frames from giving the answer away.

    Returns ``x (n, frames, size, size, 1)`` float32 and ``y (n,)`` int64.
    """
    check_int("moving_line", "n", n, minimum=1)
    check_int("moving_line", "frames", frames, minimum=2)
    check_int("moving_line", "size", size, minimum=frames)
    x = rng.random((n, frames, size, size, 1)).astype(np.float32) * 0.3
    y = rng.integers(0, 2, size=n)
    for k in range(n):
        start = int(rng.integers(0, size - frames + 1))
        top = int(rng.integers(0, size // 2))
        bottom = int(rng.integers(top + 2, size + 1))
        for t in range(frames):
            col = start + t if y[k] else start + frames - 1 - t
            x[k, t, top:bottom, col, 0] = 1.0
    return x, y.astype(np.int64)


def waveforms(rng: np.random.Generator, n: int, steps: int = 40):
    """Noisy sine, square and sawtooth waves of random frequency and phase; labels 0, 1, 2.

    A labelled set for the autoencoder: its codes should separate the three shapes though it is
    trained without the labels. Returns ``x (n, steps, 1)`` float32 and ``y (n,)`` int64.
    """
    check_int("waveforms", "n", n, minimum=1)
    check_int("waveforms", "steps", steps, minimum=4)
    y = rng.integers(0, 3, size=n)
    t = np.arange(steps)[None, :]
    freq = rng.uniform(1.0, 3.0, size=(n, 1)) / steps
    phase = rng.uniform(0, 1, size=(n, 1))
    cycle = (t * freq + phase) % 1.0  # (n, steps) in [0, 1)
    sine = np.sin(2 * np.pi * cycle)
    square = np.where(cycle < 0.5, 1.0, -1.0)
    saw = 2 * cycle - 1
    x = np.choose(y[:, None], [sine, square, saw]) + rng.normal(0, 0.1, size=(n, steps))
    return x[..., None].astype(np.float32), y.astype(np.int64)
