"""``zmqactors call`` and ``zmqactors cast``: one RPC from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zmqactors.cli._options import (
    EXIT_OK,
    UsageError,
    exchange_option,
    json_option,
    parse_pairs,
    positive_float,
    settings_from,
)
from zmqactors.cli._output import print_json
from zmqactors.topics import Target
from zmqactors.transport import RPCClient, Transport

if TYPE_CHECKING:
    import argparse

    from zmqactors.cli._options import AddParser, Runner

PAIRS_HELP = (
    "arguments as KEY=VALUE; VALUE is JSON if it parses (a=1, ok=true, l='[1,2]'), "
    "else a string (s=hello)"
)


def _kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The method's keyword arguments: ``--json`` merged with ``KEY=VALUE`` (which win)."""
    base = json_option("--json", args.json_args)
    if base is None:
        base = {}
    if not isinstance(base, dict) or not all(
        isinstance(key, str) and key.isidentifier() for key in base
    ):
        msg = f"--json must be a JSON object whose keys are identifiers, got {args.json_args!r}"
        raise UsageError(msg)
    return {**base, **parse_pairs(args.pairs)}


def _method_arguments(parser: argparse.ArgumentParser) -> None:
    """TOPIC METHOD KEY=VALUE... and what else selects the method and its arguments."""
    parser.add_argument("topic", metavar="TOPIC")
    parser.add_argument("method", metavar="METHOD")
    parser.add_argument("pairs", metavar="KEY=VALUE", nargs="*", default=[], help=PAIRS_HELP)
    parser.add_argument(
        "--json",
        dest="json_args",
        metavar="ARGS",
        help="all arguments as one JSON object, e.g. '{\"a\": 1}'; KEY=VALUE wins over it",
    )
    parser.add_argument("--namespace", default=None, help="the endpoint namespace to call")
    exchange_option(parser)


def call(args: argparse.Namespace) -> int:
    """``call``: print the result as JSON. Raises what `RPCClient.call` raises, `UsageError`."""
    kwargs = _kwargs(args)
    target = Target(
        args.topic, server=args.server, exchange=args.exchange, namespace=args.namespace
    )
    with Transport(settings_from(args)) as transport:
        client = RPCClient(transport, target, timeout=args.timeout)
        print_json(client.call(args.method, **kwargs))
    return EXIT_OK


def cast(args: argparse.Namespace) -> int:
    """``cast``: send, print nothing. Raises what `RPCClient.cast` raises, `UsageError`."""
    kwargs = _kwargs(args)
    target = Target(
        args.topic,
        server=args.server,
        fanout=args.fanout,
        exchange=args.exchange,
        namespace=args.namespace,
    )
    with Transport(settings_from(args)) as transport:
        RPCClient(transport, target).cast(args.method, **kwargs)
    return EXIT_OK


def add_commands(add: AddParser) -> dict[str, Runner]:
    """Add ``call`` and ``cast`` with ``add(name, help, description)``; return their runners."""
    call_parser = add(
        "call",
        "call a method and print its result as JSON",
        "Call METHOD(**KEY=VALUE) on one server of TOPIC and print the result as JSON. "
        "Exit 1 if the method raised, 3 on timeout or when no server is registered.",
    )
    _method_arguments(call_parser)
    call_parser.add_argument("--server", help="call this server of the topic only")
    call_parser.add_argument(
        "--timeout",
        type=positive_float,
        help="seconds to wait for the reply (default: the timeout option, 60)",
    )
    cast_parser = add(
        "cast",
        "send a method call without waiting for a reply",
        "Send METHOD(**KEY=VALUE) to one server of TOPIC (or every server, with "
        "--fanout) without waiting for a reply. Exit 3 when no server is registered.",
    )
    _method_arguments(cast_parser)
    which = cast_parser.add_mutually_exclusive_group()
    which.add_argument("--server", help="send to this server of the topic only")
    which.add_argument("--fanout", action="store_true", help="send to every server of the topic")
    return {"call": call, "cast": cast}
