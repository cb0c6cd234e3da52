"""``zmqactors notify`` and ``zmqactors listen``: publish notifications, print them."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from zmqactors.cli._options import (
    EXIT_OK,
    EXIT_TIMEOUT,
    UsageError,
    exchange_option,
    json_option,
    parse_pairs,
    positive_float,
    positive_int,
    settings_from,
)
from zmqactors.cli._output import error, print_json, to_json
from zmqactors.cli.rpc import PAIRS_HELP
from zmqactors.core.notify_dispatch import PRIORITIES
from zmqactors.topics import Target
from zmqactors.transport import NotificationListener, Notifier, Transport

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator

    from zmqactors.cli._options import AddParser, Runner

# How often `listen` looks at its stop conditions. Signal handlers only set a
# flag: setting a threading.Event from a handler can deadlock on the Event's
# own lock if the signal lands while the main thread holds it.
_LISTEN_TICK = 0.1


def _payload(args: argparse.Namespace) -> Any:
    """A notification's payload: ``--payload`` merged with ``KEY=VALUE`` (which win)."""
    payload = json_option("--payload", args.payload)
    pairs = parse_pairs(args.pairs)
    if payload is None:
        return pairs
    if not pairs:
        return payload
    if not isinstance(payload, dict):
        msg = "KEY=VALUE arguments need --payload to be a JSON object (or absent)"
        raise UsageError(msg)
    return {**payload, **pairs}


def _default_publisher_id() -> str:
    # A host name may hold characters a publisher id cannot (it is a Target name).
    host = re.sub(r"[^A-Za-z0-9_.@:#+=~-]", "-", socket.gethostname()) or "localhost"
    return f"zmqactors-cli.{host}"[:255]


def notify(args: argparse.Namespace) -> int:
    """``notify``: print how many listeners it went to. Raises like `Notifier.notify`."""
    payload = _payload(args)
    with Transport(settings_from(args)) as transport:
        notifier = Notifier(transport, args.publisher_id, (args.topic,), exchange=args.exchange)
        sent = notifier.notify(args.priority, args.event_type, payload)
    print_json(sent)
    return EXIT_OK


class _Printer:
    """The endpoint of `listen`: prints each notification as one JSON line (listener thread)."""

    def __init__(self, count: int | None) -> None:
        self.count = count
        self.received = 0
        self.broken = False
        self.done = threading.Event()
        self._lock = threading.Lock()

    def _emit(
        self,
        priority: str,
        publisher_id: str,
        event_type: str,
        payload: Any,
        metadata: dict[str, Any],
    ) -> None:
        line = to_json(
            {
                "priority": priority,
                "publisher_id": publisher_id,
                "event_type": event_type,
                "payload": payload,
                "metadata": metadata,
            }
        )
        with self._lock:
            if self.done.is_set():
                return  # past --count, or stdout is gone
            try:
                print(line, flush=True)
            except BrokenPipeError:  # e.g. `zmqactors listen T | head -1`
                self.broken = True
                self.done.set()
                return
            self.received += 1
            if self.count is not None and self.received >= self.count:
                self.done.set()

    audit = functools.partialmethod(_emit, "audit")
    debug = functools.partialmethod(_emit, "debug")
    info = functools.partialmethod(_emit, "info")
    warn = functools.partialmethod(_emit, "warn")
    error = functools.partialmethod(_emit, "error")
    critical = functools.partialmethod(_emit, "critical")
    sample = functools.partialmethod(_emit, "sample")


@contextlib.contextmanager
def _stop_signals() -> Iterator[Callable[[], bool]]:
    """While inside, SIGINT and SIGTERM only set a flag; yields a function reading it."""
    stop = False

    def handler(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def listen(args: argparse.Namespace) -> int:
    """``listen``: print notifications until a stop condition (see its help); 0, or 3.

    Raises what `NotificationListener.start` raises and ``ValueError`` for a bad name.
    """
    target = Target(args.topic, exchange=args.exchange)
    printer = _Printer(args.count)
    pool = f"pool {args.pool}" if args.pool else "default pool"
    with _stop_signals() as stopped, Transport(settings_from(args)) as transport:
        # One thread: notifications are printed in the order they arrive.
        listener = NotificationListener(
            transport, [target], [printer], pool=args.pool, executor_size=1
        )
        with listener:
            error(f"listening on {args.topic} ({pool}) at {listener.address}")
            deadline = None if args.timeout is None else time.monotonic() + args.timeout
            while not printer.done.wait(_LISTEN_TICK) and not stopped():
                if deadline is not None and time.monotonic() >= deadline:
                    break
    if printer.broken:
        # Stdout is a closed pipe: nothing left to tell anyone, and the
        # interpreter's last flush of it must not fail noisily at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if args.count is not None and printer.received < args.count and not stopped():
        error(
            f"MessagingTimeout: {printer.received} of {args.count} notifications "
            f"in {args.timeout:g}s"
        )
        return EXIT_TIMEOUT
    return EXIT_OK


def add_commands(add: AddParser) -> dict[str, Runner]:
    """Add ``notify`` and ``listen`` with ``add(name, help, description)``; return runners."""
    notify_parser = add(
        "notify",
        "publish a notification; print how many listeners it went to",
        "Publish a notification on TOPIC and print how many listeners it was sent to "
        "(one per pool; 0 when nobody listens). The payload is --payload, with "
        "KEY=VALUE arguments merged into it (or making it, without --payload).",
    )
    notify_parser.add_argument("topic", metavar="TOPIC")
    notify_parser.add_argument("event_type", metavar="EVENT_TYPE")
    notify_parser.add_argument("pairs", metavar="KEY=VALUE", nargs="*", default=[], help=PAIRS_HELP)
    notify_parser.add_argument(
        "--priority", choices=PRIORITIES, default="info", help="(default: info)"
    )
    notify_parser.add_argument(
        "--publisher-id",
        default=_default_publisher_id(),
        help="who publishes (default: zmqactors-cli.HOSTNAME)",
    )
    notify_parser.add_argument(
        "--payload", metavar="JSON", help="the payload as JSON (default: {})"
    )
    listen_parser = add(
        "listen",
        "print notifications as they come, one JSON object per line",
        "Listen to the notifications of TOPIC as one member of POOL and print each "
        'as one JSON line {"priority", "publisher_id", "event_type", "payload", '
        '"metadata"}. Runs until Ctrl-C or SIGTERM (exit 0), --count notifications '
        "(exit 0), or --timeout seconds (exit 0; exit 3 if --count was not reached).",
    )
    listen_parser.add_argument("topic", metavar="TOPIC")
    listen_parser.add_argument(
        "--pool", help="listener pool to join; each pool gets every notification (default: none)"
    )
    listen_parser.add_argument(
        "--count", type=positive_int, help="exit after this many notifications"
    )
    listen_parser.add_argument(
        "--timeout", type=positive_float, help="exit after this many seconds"
    )
    exchange_option(notify_parser)
    exchange_option(listen_parser)
    return {"notify": notify, "listen": listen}
