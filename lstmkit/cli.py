"""The ``lstmkit`` command."""

from __future__ import annotations

import argparse
import logging
import sys

from lstmkit._version import __version__


# Each entry adds one sub-command: ``add(commands)`` calls ``commands.add_parser(...)`` and sets
# ``handler=`` to a function ``(args) -> exit code``. Keep imports of heavy modules inside handlers
# so that ``lstmkit --help`` stays fast.
_COMMANDS: list = []

from lstmkit.experiments.commands import add_demo_command, add_experiment_command  # noqa: E402

_COMMANDS.append(add_demo_command)
_COMMANDS.append(add_experiment_command)

from lstmkit.forecast.cli import add_forecast_command  # noqa: E402

_COMMANDS.append(add_forecast_command)

from lstmkit.train_cli import add_train_command  # noqa: E402

_COMMANDS.append(add_train_command)

from lstmkit.zoo.cli import add_generate_command  # noqa: E402

_COMMANDS.append(add_generate_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmkit",
        description="Sequence prediction with LSTM networks: forecasting, classification, "
        "generation, and the classic memory experiments.",
    )
    parser.add_argument("--version", action="version", version=f"lstmkit {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print results and errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_command in _COMMANDS:
        add_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
