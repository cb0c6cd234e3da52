"""``zmqactors targets``: what the matchmaker knows, as a table or as JSON lines.

Every cell comes from the matchmaker, which anyone who can write to it fills:
the table and the JSON lines show control characters escaped (`_output`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from zmqactors.cli._options import EXIT_OK, CommandError, settings_from
from zmqactors.cli._output import error, escape, print_json, print_text
from zmqactors.matchmaker import matchmaker_for

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from zmqactors.cli._options import AddParser, Runner
    from zmqactors.matchmaker import Route


def describe(key: str, route: Route, now: float) -> dict[str, Any]:
    """One matchmaker entry as a row of `targets`: kind, exchange, topic, server, pool, ...

    RPC keys are ``exchange/topic``; notification keys ``notify/exchange/topic``
    with the listener's pool after the ``:`` of its server name (``None``: the
    default pool). Other keys are shown with kind ``unknown``. ``server_key`` is
    the server's CURVE public key, or None.
    """
    parts = key.split("/")
    server: str = route.server
    pool: str | None = None
    if len(parts) == 3 and parts[0] == "notify":  # noqa: PLR2004 - notify/exchange/topic
        kind = "notification"
        exchange, topic = parts[1], parts[2]
        server, _, pool_name = route.server.partition(":")
        pool = pool_name or None
    elif len(parts) == 2:  # noqa: PLR2004 - exchange/topic
        kind = "rpc"
        exchange, topic = parts
    else:
        kind, exchange, topic = "unknown", "", key
    return {
        "kind": kind,
        "exchange": exchange,
        "topic": topic,
        "server": server,
        "pool": pool,
        "address": route.address,
        "expires_in": round(route.expires - now, 1),
        # The CURVE public key the server serves with (None: no CURVE).
        "server_key": route.server_key,
    }


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of `describe` as an aligned text table with a header; cells escaped."""
    header = ("KIND", "EXCHANGE", "TOPIC", "SERVER", "POOL", "ADDRESS", "EXPIRES")
    lines: list[tuple[str, ...]] = [header]
    for row in rows:
        pool = "-" if row["kind"] != "notification" else row["pool"] or "(default)"
        cells = (row["kind"], row["exchange"], row["topic"], row["server"], pool, row["address"])
        lines.append((*(escape(cell) for cell in cells), f"in {row['expires_in']:.0f}s"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def targets(args: argparse.Namespace) -> int:
    """``targets``: list the matchmaker's entries. Raises `CommandError` if it cannot."""
    settings = settings_from(args)
    spec = settings.matchmaker
    if spec.kind == "memory":
        error(f"note: {spec.url} lives inside one process; this one has nothing registered")
    backend = matchmaker_for(settings)
    try:
        entries = getattr(backend, "entries", None)
        if entries is None:
            msg = f"this matchmaker cannot list its entries ({spec.url})"
            raise CommandError(msg)
        try:
            found: tuple[tuple[str, Route], ...] = entries()
        except Exception as exc:
            # Each backend has its own connection errors (OSError, redis-py's):
            # the operator needs the one line, not the stack.
            msg = f"cannot list the matchmaker's entries ({spec.url}): {exc}"
            raise CommandError(msg) from exc
    finally:
        backend.close()
    now = time.time()
    rows = [describe(key, route, now) for key, route in found]
    if args.json:
        for row in rows:
            print_json(row)
    elif rows:
        print_text(format_table(rows))
    else:
        error(f"nothing is registered in {spec.url}")
    return EXIT_OK


def add_commands(add: AddParser) -> dict[str, Runner]:
    """Add ``targets`` with ``add(name, help, description)``; return its runner."""
    parser = add(
        "targets",
        "list what the matchmaker knows",
        "List every live registration of the matchmaker: RPC servers and notification "
        "listeners, with their topic, server, address and when the entry expires "
        "unless refreshed.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    return {"targets": targets}
