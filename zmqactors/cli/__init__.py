"""The ``zmqactors`` command line: call, cast, notify, listen, targets, ping, info, stats, keygen.

::

    zmqactors call TOPIC METHOD [KEY=VALUE...] [--server S] [--timeout T] [--json ARGS]
    zmqactors cast TOPIC METHOD [KEY=VALUE...] [--server S | --fanout]
    zmqactors notify TOPIC EVENT_TYPE [KEY=VALUE...] [--priority P] [--payload JSON]
    zmqactors listen TOPIC [--pool P] [--count N] [--timeout T]
    zmqactors targets [--json]
    zmqactors ping|info|stats TOPIC [--server S] [--timeout T] [--json]
    zmqactors keygen DIR [--name NAME]

``zmqactors bench`` only says where the benchmark went: ``make bench`` in a
source checkout (``benchmarks/``). The messaging subcommands take the
transport options before or after their name: ``--url URL``, or ``--url-file
PATH`` (a file only you can read: a password in the URL stays out of ``ps``),
else ``$ZMQACTORS_URL``, else the config file's ``matchmaker_url``, else
``zmq://``; and ``--config-file PATH`` (an oslo.config file with a ``[zmq]``
group; the URL's query parameters override it). A ``KEY=VALUE`` argument's
value is JSON when it parses as JSON (``a=1`` is the integer 1, ``ok=true`` a
bool) and a string otherwise (``s=hello``); quote a JSON string to force a
string (``x='"1"'``).

Results go to stdout as JSON, one document per line; messages go to stderr.
What came from the network is printed with its control characters escaped
(`zmqactors.cli._output`). Exit codes: 0 ok, 1 remote error (or another
messaging error), 2 usage (bad arguments, URL, URL file, option or name), 3
timeout or no responders, 130 Ctrl-C during a call. A user mistake never
prints a Python traceback.

One module per command group (`rpc`, `notify`, `targets`, `service`, `keygen`); what
they share is in `_options` (arguments, exit codes, the transport URL) and
`_output` (printing).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

import structlog

import zmqactors
from zmqactors.cli import keygen, notify, rpc, service, targets
from zmqactors.cli._options import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    URL_ENV,
    CommandError,
    Runner,
    UsageError,
    common_options,
    parse_pairs,
    parse_value,
    settings_from,
)
from zmqactors.cli._output import error, escape, to_json
from zmqactors.cli.targets import describe, format_table
from zmqactors.errors import (
    ConfigurationError,
    MessagingError,
    MessagingTimeout,
    NoRespondersError,
    RemoteError,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "URL_ENV",
    "build_parser",
    "describe",
    "format_table",
    "main",
    "parse_pairs",
    "parse_value",
    "settings_from",
    "to_json",
]

# The benchmark is a tool of the source tree, not of the installed package.
BENCH_MOVED = (
    "the benchmark is not installed with zmqactors; in a source checkout run "
    "'make bench' (or 'python -m benchmarks', same options, e.g. --quick, --host ::1)"
)


def build_parser() -> tuple[
    argparse.ArgumentParser, dict[str, argparse.ArgumentParser], dict[str, Runner]
]:
    """The top-level parser, each subcommand's parser by name, and each one's runner."""
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="zmqactors",
        description="Actor-model messaging over ZeroMQ: call, cast, notify, listen, "
        "list targets, ping servers and ask their info and stats, write CURVE keys.",
        epilog="Exit codes: 0 ok, 1 remote or messaging error, 2 usage, "
        "3 timeout or no responders. 'zmqactors COMMAND --help' describes each command.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=zmqactors.__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=help_text, description=description)

    runners: dict[str, Runner] = {
        **rpc.add_commands(add),
        **notify.add_commands(add),
        **targets.add_commands(add),
        **service.add_commands(add),
        **keygen.add_commands(commands.add_parser),
    }
    commands.add_parser(
        "bench", help="moved: 'make bench' in a source checkout runs the benchmark", add_help=False
    )
    subparsers = {
        name: sub for name, sub in commands.choices.items() if isinstance(sub, type(parser))
    }
    return parser, subparsers, runners


def _configure_logging() -> None:
    # An application configures logging; the library never does. Stdout
    # carries results, so log lines go to stderr, warnings and worse only.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _run(runner: Runner, args: argparse.Namespace, prog: str) -> int:  # noqa: PLR0911 - one return per exit code
    """Run a command and turn every expected failure into a message and an exit code."""
    try:
        return runner(args)
    except UsageError as exc:
        error(f"{prog}: error: {exc}")
        return EXIT_USAGE
    except RemoteError as exc:
        # Type and message come from the server: one line each, escaped.
        error(f"RemoteError: {escape(exc.exc_type)}: {escape(exc.value)}")
        if getattr(args, "verbose", False) and exc.traceback:
            error(exc.traceback.rstrip("\n"), newlines=True)
        return EXIT_ERROR
    except (MessagingTimeout, NoRespondersError) as exc:
        error(f"{type(exc).__name__}: {exc}")
        return EXIT_TIMEOUT
    except ConfigurationError as exc:
        error(f"{prog}: error: {exc}")
        return EXIT_USAGE
    except MessagingError as exc:
        error(f"{type(exc).__name__}: {exc}")
        return EXIT_ERROR
    except ValueError as exc:
        # Bad Target names, method names and other values the library refuses.
        error(f"{prog}: error: {exc}")
        return EXIT_USAGE
    except (CommandError, OSError) as exc:
        error(f"{prog}: error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Raises ``SystemExit`` (status 2) for arguments argparse refuses, and
    (status 0) for ``--help`` and ``--version``.
    """
    parser, subparsers, runners = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        error(f"zmqactors bench: error: {BENCH_MOVED}")
        return EXIT_USAGE
    if args.command is None:
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    sub = subparsers[args.command]
    if hasattr(args, "pairs"):
        # argparse leaves KEY=VALUE arguments that follow an option unparsed
        # (a "*" positional is matched once, empty, before the option).
        args.pairs = [*args.pairs, *(arg for arg in rest if not arg.startswith("-"))]
        rest = [arg for arg in rest if arg.startswith("-")]
    if rest:
        sub.error(f"unrecognized arguments: {' '.join(rest)}")
    _configure_logging()
    return _run(runners[args.command], args, sub.prog)
