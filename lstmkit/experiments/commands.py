"""``lstmkit demo ...``: the experiments as sub-commands. Light to import: no torch until run."""

from __future__ import annotations


def _add_memory(demos) -> None:
    parser = demos.add_parser(
        "memory", help="learn two sequences that need memory (3,0,1,2,3 and 4,0,1,2,4)",
        description="Train an LSTM(20) on the memory demonstration and print each sequence with its "
        "predictions. Exit status 0 when both sequences are predicted exactly.")
    parser.add_argument("--way", choices=("bptt", "tbptt", "tutorial"), default="bptt",
                        help="bptt: whole sequences, full BPTT (default); tbptt: stateful streaming with "
                        "fit(tbptt=(1, 4)); tutorial: the classic one-step-per-batch tutorial (unreliable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=250)
    parser.add_argument("--seeds", type=int, default=0, metavar="N",
                        help="instead of one run, report the success rate over seeds 0..N-1")

    def handler(args) -> int:
        from lstmkit.experiments.memory import main

        return main(args)

    parser.set_defaults(handler=handler)


# One entry per demo: a function that adds its parser to the `demo` sub-commands.
DEMOS = [_add_memory]


def add_demo_command(commands) -> None:
    """Register ``lstmkit demo`` and its demos on the top-level sub-command parsers."""
    parser = commands.add_parser("demo", help="run a classic experiment (see `lstmkit demo -h`)",
                                 description="Classic experiments that show what an LSTM's memory can do.")
    demos = parser.add_subparsers(dest="demo", metavar="DEMO", required=True)
    for add in DEMOS:
        add(demos)
