"""Experiments built from the library: the memory demonstration and the classic LSTM tasks.

The tasks of Hochreiter & Schmidhuber 1997 (section 5) and Gers, Schmidhuber & Cummins 2000,
each a module with its data generator, network, criterion and ``trial``:

==================  =====================================  =========================================
name                module                                 task
==================  =====================================  =========================================
``reber``           :mod:`~lstmkit.experiments.reber`      embedded Reber grammar (1997, Exp. 1)
``lag2a``           :mod:`~lstmkit.experiments.long_lag`   noise-free long time lag, p = 100 (Exp. 2a)
``lag2b``           :mod:`~lstmkit.experiments.long_lag`   the same with random middles (Exp. 2b)
``adding``          :mod:`~lstmkit.experiments.adding`     adding problem, T = 100 (Exp. 4)
``temporal-order``  :mod:`~lstmkit.experiments.temporal_order`  temporal order, 4 classes (Exp. 6a)
``continual-reber`` :mod:`~lstmkit.experiments.continual_reber`  continual embedded Reber (Gers 2000)
==================  =====================================  =========================================

``run(name, cell=..., trials=..., seed=..., quick=..., **settings)`` trains ``trials`` networks
and returns a dict of results; ``lstmkit experiment NAME`` runs it from the command line.
Importing this package does not import torch (the command line stays fast).
"""

from __future__ import annotations

import importlib
import logging
import statistics
import time

logger = logging.getLogger("lstmkit.experiments")

# name -> (module, settings fixed by the name)
TASKS: dict[str, tuple[str, dict]] = {
    "reber": ("lstmkit.experiments.reber", {}),
    "lag2a": ("lstmkit.experiments.long_lag", {"random_middle": False}),
    "lag2b": ("lstmkit.experiments.long_lag", {"random_middle": True}),
    "adding": ("lstmkit.experiments.adding", {}),
    "temporal-order": ("lstmkit.experiments.temporal_order", {}),
    "continual-reber": ("lstmkit.experiments.continual_reber", {}),
}

__all__ = ["TASKS", "run", "task_module"]


def task_module(name: str):
    """The module that defines task ``name`` (see :data:`TASKS`)."""
    if name not in TASKS:
        raise ValueError(f"experiments: unknown task `name` {name!r}. Expected one of: "
                         f"{', '.join(repr(t) for t in TASKS)}.")
    return importlib.import_module(TASKS[name][0])


def run(name: str, *, cell: str | None = None, trials: int = 1, seed: int = 0, quick: bool = False,
        verbose: bool = True, **settings) -> dict:
    """Train ``trials`` networks on task ``name`` and report each trial and the totals.

    Args:
        name: a key of :data:`TASKS`.
        cell: ``"lstm"`` (forget-gate LSTM), ``"rnn"``, ``"gru"``, or any LSTM variant name
            (``"lstm1997"``, ``"peephole"``, ...). None: the task's ``CELL`` (``"lstm1997"``,
            the 1997 cell without forget gate, for the 1997 long-lag tasks adding, lag2a, lag2b
            and temporal-order; ``"lstm"`` for reber and continual-reber).
        trials: networks to train; trial k uses seed ``seed + k`` (weights and data).
        seed: the first trial's seed.
        quick: the task's short form (shorter lags, smaller budgets) used by the tests.
        verbose: show a progress bar over training sequences.
        **settings: the task's settings (``units``, ``learning_rate``, ``batch_size``,
            ``max_sequences``, and the task's own such as ``p`` or ``T``); see each module's
            ``DEFAULTS``.

    Returns:
        ``{"task", "cell", "settings", "trials": [per-trial dicts], "solved", "n_trials",
        "success_rate", "sequences_median", "test_wrong", "seconds"}``. Each trial has
        ``solved``, ``sequences`` (training sequences seen when the criterion was met, else
        None), test results and ``seconds``.

    >>> result = run("reber", trials=1, quick=True, verbose=False)  # doctest: +SKIP
    >>> result["solved"], result["n_trials"]  # doctest: +SKIP
    (1, 1)
    """
    from lstmkit._validation import check_int
    from lstmkit.experiments import _common as C

    module = task_module(name)
    cell = C.check_cell(f"experiment {name}", getattr(module, "CELL", "lstm") if cell is None else cell)
    trials = check_int(f"experiment {name}", "trials", trials, minimum=1)
    seed = check_int(f"experiment {name}", "seed", seed, minimum=0)
    fixed = TASKS[name][1]
    clash = sorted(set(settings) & set(fixed))
    if clash:
        raise ValueError(f"experiment {name}: `{clash[0]}` is fixed by the task name; "
                         f"use {'lag2a' if name == 'lag2b' else 'lag2b'} instead.")
    base = dict(module.DEFAULTS)
    if quick:
        base.update(module.QUICK)
    base.update(fixed)
    merged = C.check_settings(f"experiment {name}", settings, base)
    if hasattr(module, "check"):
        merged = module.check(merged)
    start = time.perf_counter()
    results = []
    for k in range(trials):
        r = module.trial(cell, seed + k, merged, verbose=verbose)
        r["seed"] = seed + k
        results.append(r)
        logger.info("%s %s seed %d: %s after %s training sequences, %s of %s test sequences wrong (%.1f s)",
                    name, cell, seed + k, "solved" if r["solved"] else "NOT solved",
                    f"{r['sequences']:,}" if r["sequences"] is not None else f"{r['sequences_seen']:,} (budget)",
                    r.get("test_wrong", "-"), r.get("test_total", "-"), r["seconds"])
    solved = [r for r in results if r["solved"]]
    return {"task": name, "cell": cell, "settings": merged, "quick": bool(quick), "trials": results,
            "solved": len(solved), "n_trials": trials, "success_rate": len(solved) / trials,
            "sequences_median": statistics.median(r["sequences"] for r in solved) if solved else None,
            "test_wrong": [r.get("test_wrong") for r in results],
            "seconds": time.perf_counter() - start}
