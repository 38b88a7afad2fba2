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


#: ``lstmkit experiment all``: the default protocol, task by task (name, settings). ``--long``
#: adds the adding problem at T = 1000 (the paper's 853,000 sequences; hours here).
PROTOCOL = [("reber", {}), ("lag2a", {}), ("lag2b", {}), ("adding", {"T": 100}), ("adding", {"T": 500}),
            ("temporal-order", {}), ("continual-reber", {})]
LONG = [("adding", {"T": 1000})]
BASELINES = ("rnn", "gru")


def protocol(long: bool = False, baselines: bool = False, quick: bool = False) -> list[tuple[str, str | None, dict]]:
    """The runs of ``lstmkit experiment all``: ``(task, cell or None for the task's own, settings)``.

    >>> [(t, c, s) for t, c, s in protocol()][:2]
    [('reber', None, {}), ('lag2a', None, {})]
    >>> len(protocol(long=True, baselines=True))
    24
    >>> protocol(quick=True)[3]  # the quick forms keep their own short lags
    ('adding', None, {})
    """
    runs = PROTOCOL + (LONG if long else [])
    if quick:  # one quick run per task; the quick form sets its own lag
        seen, short = set(), []
        for task, _ in runs:
            if task not in seen:
                seen.add(task)
                short.append((task, {}))
        runs = short
    cells = (None, *BASELINES) if baselines else (None,)
    return [(task, cell, dict(settings)) for task, settings in runs for cell in cells]


def _write_json(path: str, data) -> None:
    from lstmkit._io import write_atomic

    write_atomic(path, json.dumps(data, indent=1, default=str).encode())


def _print_trials(result: dict) -> None:
    print(summary_line(result))
    for r in result["trials"]:
        done = f"{r['sequences']:,}" if r["sequences"] is not None else f"not met in {r['sequences_seen']:,}"
        print(f"  seed {r['seed']}: {done} training sequences; test wrong {r.get('test_wrong')} of "
              f"{r.get('test_total')}; {r['seconds']:.1f} s")


def main_all(args) -> int:
    """Every task's default run (and the baselines with ``--baselines``), one summary line each."""
    for flag, given in (("--cell", args.cell), ("--T", args.T), ("--units", args.units), ("--lr", args.lr)):
        if given is not None:
            logger.error("experiment all: `%s` applies to a single task; name the task instead of `all`.", flag)
            return 2
    if args.full:
        logger.error("experiment all: `--full` applies to continual-reber only; run it on its own.")
        return 2
    import torch

    from lstmkit.experiments import run

    torch.set_num_threads(1)
    results = []
    for task, cell, settings in protocol(long=args.long, baselines=args.baselines, quick=args.quick):
        result = run(task, cell=cell, trials=args.trials, seed=args.seed, quick=args.quick,
                     verbose=not getattr(args, "quiet", False), **settings)
        result["label"] = task + (f" T={settings['T']}" if "T" in settings else "")
        print(summary_line({**result, "task": result["label"]}), flush=True)
        results.append(result)
        if args.json:  # rewritten after every task, so an interrupted run keeps what it finished
            _write_json(args.json, results)
    own = [r for r, (_, cell, _) in zip(results, protocol(args.long, args.baselines, args.quick)) if cell is None]
    return 0 if all(r["solved"] == r["n_trials"] for r in own) else 1


def main(args) -> int:
    if args.name == "all":
        return main_all(args)
    if getattr(args, "long", False) or getattr(args, "baselines", False):
        logger.error("experiment %s: `--long` and `--baselines` apply to `lstmkit experiment all` only.", args.name)
        return 2
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
    _print_trials(result)
    if args.json:
        _write_json(args.json, result)
    return 0 if result["solved"] == result["n_trials"] else 1
