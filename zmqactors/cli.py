"""The ``zmqactors`` command line.

Subcommands so far: ``bench`` (the benchmark of ``make bench``). Exit codes:
0 ok, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import zmqactors

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = argparse.ArgumentParser(
        prog="zmqactors", description="Actor-model messaging over ZeroMQ."
    )
    parser.add_argument("--version", action="version", version=zmqactors.__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "bench", help="run the benchmark (see 'zmqactors bench --help')", add_help=False
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from zmqactors import bench  # noqa: PLC0415 - only this command needs it

        return bench.main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
