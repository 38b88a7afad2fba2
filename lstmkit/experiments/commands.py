"""``lstmkit demo ...`` and ``lstmkit experiment ...``: the experiments as sub-commands.

Light to import: no torch until a command runs."""

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




def add_experiment_command(commands) -> None:
    """Register ``lstmkit experiment NAME [--cell ...] [--T N] [--trials N] [--seed N] [--quick]``."""
    from lstmkit.experiments import TASKS

    parser = commands.add_parser(
        "experiment", help="reproduce a classic LSTM experiment (Hochreiter & Schmidhuber 1997, Gers et al. 2000)",
        description="Train networks on one of the classic long-time-lag tasks with the paper's success "
        "criterion, and report the success rate, training sequences to success and test errors. "
        "Exit status 0 when every trial met the criterion, 1 otherwise. See docs/experiments.md.")
    parser.add_argument("name", choices=[*TASKS, "all"], metavar="NAME",
                        help=f"one of: {', '.join(TASKS)}; or all: every task's default run in turn "
                        "(adding at T = 100 and 500), one summary line each")
    parser.add_argument("--cell", default=None,
                        help="lstm (forget-gate LSTM), rnn, gru, or an LSTM variant: lstm1997, peephole, ... "
                        "(default: lstm1997 for adding, lag2a, lag2b and temporal-order, lstm otherwise)")
    parser.add_argument("--T", type=int, default=None, metavar="N",
                        help="the time lag: T for adding, p for lag2a/lag2b (the paper's defaults: 100)")
    parser.add_argument("--trials", type=int, default=1, metavar="N", help="networks to train (seeds seed..seed+N-1)")
    parser.add_argument("--seed", type=int, default=0, metavar="N")
    parser.add_argument("--quick", action="store_true", help="the short form the tests run (short lags, small budgets)")
    parser.add_argument("--units", type=int, default=None, metavar="N", help="hidden units (default: per task)")
    parser.add_argument("--lr", type=float, default=None, metavar="X", help="Adam learning rate (default: per task)")
    parser.add_argument("--full", action="store_true",
                        help="continual-reber: test streams of 10^6 symbols as in the paper (default 10^5)")
    parser.add_argument("--baselines", action="store_true",
                        help="all: also run every task with the plain rnn and the gru")
    parser.add_argument("--long", action="store_true", help="all: also the adding problem at T = 1000 (hours)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON to PATH")

    def handler(args) -> int:
        from lstmkit.experiments.report import main

        return main(args)

    parser.set_defaults(handler=handler)
