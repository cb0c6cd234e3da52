"""``zmqactors ping``, ``info`` and ``stats``: ask every server of a topic through the service API.

Like ``nats micro ping/info/stats``: each server registered for the topic
(or the one ``--server`` names) is called at once, in namespace
``zmqactors`` (`zmqactors.core.service_api`), and every answer is printed as
it is, one table row (or JSON line) per server; a server that does not
answer within the timeout gets a row saying so. What the servers answer
comes from the network: every cell is escaped (`_output`).

Exit codes: 0 every server answered, 1 some did not, 3 none did (or none
is registered).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from zmqactors.cli._options import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_TIMEOUT,
    exchange_option,
    positive_float,
    settings_from,
)
from zmqactors.cli._output import escape, print_json, print_text
from zmqactors.core.service_api import SERVICE_NAMESPACE
from zmqactors.errors import MessagingError, NoRespondersError
from zmqactors.topics import Target, matchmaker_key
from zmqactors.transport import RPCClient, Transport

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from concurrent.futures import Future

    from zmqactors.cli._options import AddParser, Runner

__all__ = ["add_commands", "ask_all", "format_rows"]

_DEFAULT_TIMEOUT = 5.0


class Answer:
    """One server's answer to a service API call: its result or error, and the round trip."""

    def __init__(self, server: str, address: str, sent: float) -> None:
        self.server = server
        self.address = address
        self.sent = sent
        self.rtt: float | None = None
        self.result: Any = None
        self.error: str | None = None

    def settle(self, future: Future[Any]) -> None:
        """Record ``future``'s outcome; the round trip ends now (the reply-waiter's thread)."""
        self.rtt = time.perf_counter() - self.sent
        exc = future.exception()
        if exc is None:
            self.result = future.result()
        else:
            self.error = f"{type(exc).__name__}: {exc}"


def ask_all(transport: Transport, target: Target, method: str, timeout: float) -> list[Answer]:
    """Call service method ``method`` on every server of ``target`` at once; their answers.

    Raises `NoRespondersError` when no server of ``target`` is registered.
    """
    routes = transport.runtime().lookup(matchmaker_key(target))
    if target.server is not None:
        routes = tuple(r for r in routes if r.server == target.server)
    if not routes:
        msg = f"no server registered for {target}"
        raise NoRespondersError(msg)
    answers: list[tuple[Answer, Future[Any]]] = []
    for route in sorted(routes, key=lambda r: (r.server, r.address)):
        direct = target.evolve(server=route.server, namespace=SERVICE_NAMESPACE)
        client = RPCClient(transport, direct, timeout=timeout)
        answer = Answer(route.server, route.address, time.perf_counter())
        try:
            future = client.call_async(method)
        except MessagingError as exc:
            answer.error = f"{type(exc).__name__}: {exc}"
            continue
        future.add_done_callback(answer.settle)
        answers.append((answer, future))
    for _, future in answers:
        # Bounded by the call's own timeout; the reply-waiter settles every future.
        future.exception(timeout=timeout + 1)
    return [answer for answer, _ in answers]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f} ms"


def format_rows(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An aligned text table; every cell escaped."""
    lines = [tuple(header), *(tuple(escape(cell) for cell in row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _target(args: argparse.Namespace) -> Target:
    return Target(args.topic, server=args.server, exchange=args.exchange)


def _exit_code(answers: Sequence[Answer]) -> int:
    failed = sum(answer.error is not None for answer in answers)
    if failed == 0:
        return EXIT_OK
    return EXIT_TIMEOUT if failed == len(answers) else EXIT_ERROR


def ping(args: argparse.Namespace) -> int:
    """``ping``: each server's round-trip time."""
    with Transport(settings_from(args)) as transport:
        answers = ask_all(transport, _target(args), "ping", args.timeout)
    if args.json:
        for a in answers:
            rtt = None if a.error else round((a.rtt or 0) * 1000, 3)
            print_json({"server": a.server, "address": a.address, "rtt_ms": rtt, "error": a.error})
    else:
        rows = [(a.server, a.address, a.error or _ms(a.rtt)) for a in answers]
        print_text(format_rows(("SERVER", "ADDRESS", "RTT"), rows))
    return _exit_code(answers)


def _ask(args: argparse.Namespace, method: str) -> tuple[list[Answer], bool]:
    """Every server's answer to ``method``; True when they were printed already (``--json``)."""
    with Transport(settings_from(args)) as transport:
        answers = ask_all(transport, _target(args), method, args.timeout)
    if args.json:
        for a in answers:
            print_json(a.result if a.error is None else {"server": a.server, "error": a.error})
    return answers, args.json


def info(args: argparse.Namespace) -> int:
    """``info``: each server's name, version, address, CURVE, uptime, endpoints and methods."""
    answers, printed = _ask(args, "info")
    if printed:
        return _exit_code(answers)
    blocks = []
    for a in answers:
        if a.error is not None or not isinstance(a.result, dict):
            blocks.append(f"{escape(a.server)}  {escape(a.address)}  {escape(a.error)}")
            continue
        blocks.append(_info_block(a.result))
    print_text("\n\n".join(blocks))
    return _exit_code(answers)


def _info_block(result: dict[str, Any]) -> str:
    head = format_rows(
        ("SERVER", "TOPIC", "ADDRESS", "VERSION", "CURVE", "UPTIME"),
        [
            (
                result.get("server"),
                result.get("topic"),
                result.get("address"),
                result.get("zmqactors_version"),
                "yes" if result.get("curve") else "no",
                f"{result.get('uptime', 0):.0f}s",
            )
        ],
    )
    lines = [head]
    endpoints = result.get("endpoints")
    for endpoint in endpoints if isinstance(endpoints, list) else []:
        if not isinstance(endpoint, dict):
            continue
        where = ", ".join(
            f"{name} {escape(endpoint.get(name))}"
            for name in ("namespace", "version")
            if endpoint.get(name) is not None
        )
        lines.append(f"  {escape(endpoint.get('class'))}{f' ({where})' if where else ''}")
        methods = endpoint.get("methods")
        for name, signature in (methods if isinstance(methods, dict) else {}).items():
            lines.append(f"    {escape(name)}{escape(signature)}")
    return "\n".join(lines)


_STATS_COLUMNS = ("calls", "errors", "refused", "in_flight")
_TRANSPORT_COLUMNS = ("busy_refused", "expired_dropped", "auth_rejections")


def stats(args: argparse.Namespace) -> int:
    """``stats``: each server's counters and handling times."""
    answers, printed = _ask(args, "stats")
    if printed:
        return _exit_code(answers)
    header = ("SERVER", *(c.upper() for c in (*_STATS_COLUMNS, *_TRANSPORT_COLUMNS)), "P50", "P99")
    rows = []
    for a in answers:
        result = a.result if isinstance(a.result, dict) else {}
        if a.error is not None:
            rows.append((a.server, a.error, *[""] * (len(header) - 2)))
            continue
        transport_counts = result.get("transport")
        if not isinstance(transport_counts, dict):
            transport_counts = {}
        rows.append(
            (
                a.server,
                *(result.get(c, "-") for c in _STATS_COLUMNS),
                *(transport_counts.get(c, 0) for c in _TRANSPORT_COLUMNS),
                _ms(_number(result.get("p50"))),
                _ms(_number(result.get("p99"))),
            )
        )
    print_text(format_rows(header, rows))
    return _exit_code(answers)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def add_commands(add: AddParser) -> dict[str, Runner]:
    """Add ``ping``, ``info`` and ``stats`` with ``add(name, help, description)``."""
    commands = {
        "ping": ("print each server's round-trip time", ping),
        "info": ("print each server's version, address, endpoints and methods", info),
        "stats": ("print each server's calls, errors, refusals and handling times", stats),
    }
    runners: dict[str, Runner] = {}
    for name, (help_text, runner) in commands.items():
        parser = add(
            name,
            help_text,
            f"Ask every server registered for TOPIC (or the one --server names) "
            f"through the service API, at once, and {help_text.removeprefix('print ')}. "
            "Exit 1 if some did not answer, 3 if none did.",
        )
        parser.add_argument("topic", metavar="TOPIC")
        parser.add_argument("--server", help="ask this server of the topic only")
        exchange_option(parser)
        parser.add_argument(
            "--timeout",
            type=positive_float,
            default=_DEFAULT_TIMEOUT,
            help=f"seconds to wait for the answers (default {_DEFAULT_TIMEOUT:g})",
        )
        parser.add_argument("--json", action="store_true", help="one JSON object per server")
        runners[name] = runner
    return runners
