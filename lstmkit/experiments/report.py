"""``lstmkit experiment NAME``: run a classic task and print its results beside the paper's.

>>> line = summary_line({"task": "adding", "cell": "lstm", "solved": 2, "n_trials": 3,
...     "sequences_median": 9000, "test_wrong": [0, 1, None], "seconds": 12.0,
...     "trials": [{"test_total": 2560}] * 3})
>>> line
'adding lstm: solved 2 of 3 trials; median 9,000 training sequences to success; test wrong: 0, 1, - of 2,560; 12 s'
"""

from __future__ import annotations

import json
import logging

logger = logging.getLogger("lstmkit.experiments")


def summary_line(result: dict) -> str:
    """One line: success rate, median sequences to success, test errors per trial, time."""
    median = result["sequences_median"]
    seqs = f"median {median:,.0f} training sequences to success" if median is not None else "never met the criterion"
    wrong = ", ".join("-" if w is None else str(w) for w in result["test_wrong"])
    total = result["trials"][0].get("test_total", "?")
    total = f"{total:,}" if isinstance(total, int) else total
    return (f"{result['task']} {result['cell']}: solved {result['solved']} of {result['n_trials']} trials; {seqs}; "
            f"test wrong: {wrong} of {total}; {result['seconds']:.0f} s")


def settings_from_args(args) -> dict:
    """The task settings that the command-line options ask for."""
    settings = {}
    if args.T is not None:
        if args.name == "adding":
            settings["T"] = args.T
        elif args.name in ("lag2a", "lag2b"):
            settings["p"] = args.T
        else:
            raise ValueError(f"experiment {args.name}: `--T` sets the lag of adding, lag2a and lag2b only; "
                             f"{args.name} has a fixed length. Leave --T out.")
    if args.units is not None:
        settings["units"] = args.units
    if args.lr is not None:
        settings["learning_rate"] = args.lr
    if args.full:
        if args.name != "continual-reber":
            raise ValueError("experiment: `--full` applies to continual-reber only (test streams of 10^6 symbols).")
        settings["test_symbols"] = 1_000_000
    return settings


def main(args) -> int:
    try:
        settings = settings_from_args(args)
    except ValueError as err:
        logger.error("%s", err)
        return 2
    import torch

    from lstmkit.experiments import run

    torch.set_num_threads(1)  # small networks: one thread is as fast and leaves cores to others
    try:
        result = run(args.name, cell=args.cell, trials=args.trials, seed=args.seed, quick=args.quick,
                     verbose=not getattr(args, "quiet", False), **settings)
    except (TypeError, ValueError) as err:
        logger.error("%s", err)
        return 2
    print(summary_line(result))
    for r in result["trials"]:
        done = f"{r['sequences']:,}" if r["sequences"] is not None else f"not met in {r['sequences_seen']:,}"
        print(f"  seed {r['seed']}: {done} training sequences; test wrong {r.get('test_wrong')} of "
              f"{r.get('test_total')}; {r['seconds']:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=str)
    return 0 if result["solved"] == result["n_trials"] else 1
