"""The ``lstmkit`` command."""

from __future__ import annotations

import argparse
import logging
import sys

from lstmkit._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmkit",
        description="Sequence prediction with LSTM networks: forecasting, classification, "
        "generation, and the classic memory experiments.",
    )
    parser.add_argument("--version", action="version", version=f"lstmkit {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print results and errors")
    parser.add_subparsers(dest="command", metavar="COMMAND")
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
