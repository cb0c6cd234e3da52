"""The ``zmqactors`` command line: call, cast, notify, listen, targets, bench.

::

    zmqactors call TOPIC METHOD [KEY=VALUE...] [--server S] [--timeout T] [--json ARGS]
    zmqactors cast TOPIC METHOD [KEY=VALUE...] [--server S | --fanout]
    zmqactors notify TOPIC EVENT_TYPE [KEY=VALUE...] [--priority P] [--payload JSON]
    zmqactors listen TOPIC [--pool P] [--count N] [--timeout T]
    zmqactors targets [--json]
    zmqactors keygen DIR [--name NAME]
    zmqactors bench [...]

Every subcommand but ``bench`` takes the transport options before or after
its name: ``--url URL`` (default: ``$ZMQACTORS_URL``, else the config file's
``matchmaker_url``, else ``zmq://``) and ``--config-file PATH`` (an
oslo.config file with a ``[zmq]`` group; the URL's query parameters override
it). A ``KEY=VALUE`` argument's value is JSON when it parses as JSON (``a=1``
is the integer 1, ``ok=true`` a bool) and a string otherwise (``s=hello``);
quote a JSON string to force a string (``x='"1"'``).

Results go to stdout as JSON, one document per line; messages go to stderr.
Exit codes: 0 ok, 1 remote error (or another messaging error), 2 usage (bad
arguments, URL, option or name), 3 timeout or no responders, 130 Ctrl-C
during a call. A user mistake never prints a Python traceback.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn

import structlog
from oslo_config import cfg

import zmqactors
from zmqactors.core.notify_dispatch import PRIORITIES
from zmqactors.errors import (
    ConfigurationError,
    MessagingError,
    MessagingTimeout,
    NoRespondersError,
    RemoteError,
)
from zmqactors.matchmaker import create_matchmaker
from zmqactors.net import keys
from zmqactors.options import DEFAULT_URL, Settings, parse_url
from zmqactors.topics import Target
from zmqactors.transport import NotificationListener, Notifier, RPCClient, Transport

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from zmqactors.matchmaker import Route

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130

URL_ENV = "ZMQACTORS_URL"

# How often `listen` looks at its stop conditions. Signal handlers only set a
# flag: setting a threading.Event from a handler can deadlock on the Event's
# own lock if the signal lands while the main thread holds it.
_LISTEN_TICK = 0.1


class _UsageError(Exception):
    """A bad command-line argument; the message is shown as ``zmqactors CMD: error: ...``."""


class _CommandError(Exception):
    """Something the user cannot fix with other arguments; exit 1 with the message."""


# -- argument parsing ---------------------------------------------------------------


def _positive_float(text: str) -> float:
    """Parse a positive number of seconds for argparse; raises ``ArgumentTypeError``."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        msg = f"expected a positive number of seconds, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_int(text: str) -> int:
    """Parse a positive integer for argparse; raises ``ArgumentTypeError``."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a positive integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _refuse_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON; "x=NaN" is taken as the string "NaN".
    raise ValueError(name)


def parse_value(text: str) -> Any:
    """The value of a ``KEY=VALUE`` argument: JSON if ``text`` parses as JSON, else ``text``."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return text


def parse_pairs(pairs: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "s=hi"]`` as ``{"a": 1, "s": "hi"}`` (see `parse_value`).

    Raises `_UsageError` for an argument without ``=`` or whose key is not an
    identifier, and for a key given twice.
    """
    result: dict[str, Any] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.isidentifier():
            msg = f"bad argument {pair!r}: expected KEY=VALUE with an identifier as KEY"
            raise _UsageError(msg)
        if key in result:
            msg = f"argument {key!r} is given more than once"
            raise _UsageError(msg)
        result[key] = parse_value(value)
    return result


def _json_option(option: str, text: str | None) -> Any:
    """The JSON value of ``option``; raises `_UsageError` naming it if ``text`` is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        msg = f"{option} is not valid JSON ({exc}): {text!r}"
        raise _UsageError(msg) from None


def _kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The method's keyword arguments: ``--json`` merged with ``KEY=VALUE`` (which win)."""
    base = _json_option("--json", args.json_args)
    if base is None:
        base = {}
    if not isinstance(base, dict) or not all(
        isinstance(key, str) and key.isidentifier() for key in base
    ):
        msg = f"--json must be a JSON object whose keys are identifiers, got {args.json_args!r}"
        raise _UsageError(msg)
    return {**base, **parse_pairs(args.pairs)}


def _payload(args: argparse.Namespace) -> Any:
    """A notification's payload: ``--payload`` merged with ``KEY=VALUE`` (which win)."""
    payload = _json_option("--payload", args.payload)
    pairs = parse_pairs(args.pairs)
    if payload is None:
        return pairs
    if not pairs:
        return payload
    if not isinstance(payload, dict):
        msg = "KEY=VALUE arguments need --payload to be a JSON object (or absent)"
        raise _UsageError(msg)
    return {**payload, **pairs}


def _default_publisher_id() -> str:
    # A host name may hold characters a publisher id cannot (it is a Target name).
    host = re.sub(r"[^A-Za-z0-9_.@:#+=~-]", "-", socket.gethostname()) or "localhost"
    return f"zmqactors-cli.{host}"[:255]


def _common_options() -> argparse.ArgumentParser:
    """The options every subcommand takes, before or after its name."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("transport options")
    # SUPPRESS: an option left out after the subcommand must not reset the
    # value given before it (argparse copies the subcommand's defaults over).
    group.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help=f"transport URL, e.g. zmq://, zmq+redis://HOST:PORT/DB?timeout=5 "
        f"(default: ${URL_ENV}, else the config file's matchmaker_url, else {DEFAULT_URL})",
    )
    group.add_argument(
        "--config-file",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="oslo.config file whose [zmq] group sets the options; "
        "the URL's query parameters override them",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the server's traceback of a remote error",
    )
    return common


def _target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exchange", default=None, help="the target's exchange (default: default)")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and the parser of each subcommand by name."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="zmqactors",
        description="Actor-model messaging over ZeroMQ: call, cast, notify, listen, "
        "list targets, benchmark.",
        epilog="Exit codes: 0 ok, 1 remote or messaging error, 2 usage, "
        "3 timeout or no responders. 'zmqactors COMMAND --help' describes each command.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=zmqactors.__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    pairs_help = (
        "arguments as KEY=VALUE; VALUE is JSON if it parses (a=1, ok=true, l='[1,2]'), "
        "else a string (s=hello)"
    )

    def add(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=help_text, description=description)

    call = add(
        "call",
        "call a method and print its result as JSON",
        "Call METHOD(**KEY=VALUE) on one server of TOPIC and print the result as JSON. "
        "Exit 1 if the method raised, 3 on timeout or when no server is registered.",
    )
    call.add_argument("topic", metavar="TOPIC")
    call.add_argument("method", metavar="METHOD")
    call.add_argument("pairs", metavar="KEY=VALUE", nargs="*", default=[], help=pairs_help)
    call.add_argument("--server", help="call this server of the topic only")
    call.add_argument(
        "--timeout",
        type=_positive_float,
        help="seconds to wait for the reply (default: the timeout option, 60)",
    )
    call.add_argument(
        "--json",
        dest="json_args",
        metavar="ARGS",
        help="all arguments as one JSON object, e.g. '{\"a\": 1}'; KEY=VALUE wins over it",
    )
    call.add_argument("--namespace", default=None, help="the endpoint namespace to call")
    _target_options(call)

    cast = add(
        "cast",
        "send a method call without waiting for a reply",
        "Send METHOD(**KEY=VALUE) to one server of TOPIC (or every server, with "
        "--fanout) without waiting for a reply. Exit 3 when no server is registered.",
    )
    cast.add_argument("topic", metavar="TOPIC")
    cast.add_argument("method", metavar="METHOD")
    cast.add_argument("pairs", metavar="KEY=VALUE", nargs="*", default=[], help=pairs_help)
    which = cast.add_mutually_exclusive_group()
    which.add_argument("--server", help="send to this server of the topic only")
    which.add_argument("--fanout", action="store_true", help="send to every server of the topic")
    cast.add_argument(
        "--json",
        dest="json_args",
        metavar="ARGS",
        help="all arguments as one JSON object; KEY=VALUE wins over it",
    )
    cast.add_argument("--namespace", default=None, help="the endpoint namespace to call")
    _target_options(cast)

    notify = add(
        "notify",
        "publish a notification; print how many listeners it went to",
        "Publish a notification on TOPIC and print how many listeners it was sent to "
        "(one per pool; 0 when nobody listens). The payload is --payload, with "
        "KEY=VALUE arguments merged into it (or making it, without --payload).",
    )
    notify.add_argument("topic", metavar="TOPIC")
    notify.add_argument("event_type", metavar="EVENT_TYPE")
    notify.add_argument("pairs", metavar="KEY=VALUE", nargs="*", default=[], help=pairs_help)
    notify.add_argument("--priority", choices=PRIORITIES, default="info", help="(default: info)")
    notify.add_argument(
        "--publisher-id",
        default=_default_publisher_id(),
        help="who publishes (default: zmqactors-cli.HOSTNAME)",
    )
    notify.add_argument("--payload", metavar="JSON", help="the payload as JSON (default: {})")
    _target_options(notify)

    listen = add(
        "listen",
        "print notifications as they come, one JSON object per line",
        "Listen to the notifications of TOPIC as one member of POOL and print each "
        'as one JSON line {"priority", "publisher_id", "event_type", "payload", '
        '"metadata"}. Runs until Ctrl-C or SIGTERM (exit 0), --count notifications '
        "(exit 0), or --timeout seconds (exit 0; exit 3 if --count was not reached).",
    )
    listen.add_argument("topic", metavar="TOPIC")
    listen.add_argument(
        "--pool", help="listener pool to join; each pool gets every notification (default: none)"
    )
    listen.add_argument("--count", type=_positive_int, help="exit after this many notifications")
    listen.add_argument("--timeout", type=_positive_float, help="exit after this many seconds")
    _target_options(listen)

    targets = add(
        "targets",
        "list what the matchmaker knows",
        "List every live registration of the matchmaker: RPC servers and notification "
        "listeners, with their topic, server, address and when the entry expires "
        "unless refreshed.",
    )
    targets.add_argument("--json", action="store_true", help="one JSON object per line")

    keygen = commands.add_parser(
        "keygen",
        help="write a CurveZMQ key pair",
        description="Write a new CurveZMQ key pair into DIR (created, mode 0700, if "
        "missing): NAME.key, the public key, for the curve_public_keys_dir of the "
        "servers this host calls, and NAME.key_secret (mode 0600), this host's "
        "curve_secret_key_file. Existing files are never overwritten.",
    )
    keygen.add_argument("directory", metavar="DIR")
    keygen.add_argument(
        "--name", default=socket.gethostname(), help="the files' name (default: this host's name)"
    )

    commands.add_parser(
        "bench", help="run the benchmark (see 'zmqactors bench --help')", add_help=False
    )
    subparsers = {
        name: sub for name, sub in commands.choices.items() if isinstance(sub, type(parser))
    }
    return parser, subparsers


# -- transport ---------------------------------------------------------------------


def _load_config(path: str) -> cfg.ConfigOpts:
    """Read an oslo.config file; raises `_UsageError` if it is missing or malformed."""
    conf = cfg.ConfigOpts()
    try:
        conf(args=[], project=None, default_config_files=[path], default_config_dirs=[])
    except cfg.Error as exc:
        msg = f"cannot read --config-file: {exc}"
        raise _UsageError(msg) from None
    return conf


def settings_from(args: argparse.Namespace) -> Settings:
    """The transport settings the options ask for (see the module docstring).

    Raises `ConfigurationError` for a bad URL or option, `_UsageError` for an
    unreadable config file.
    """
    url: str | None = getattr(args, "url", None) or os.environ.get(URL_ENV) or None
    config_file: str | None = getattr(args, "config_file", None)
    if config_file is None:
        return parse_url(url or DEFAULT_URL)
    base = Settings.from_conf(_load_config(config_file))
    return base if url is None else parse_url(url, base)


# -- output ------------------------------------------------------------------------


def _jsonable(value: object) -> object:
    # What msgpack may decode but JSON cannot hold: bytes, shown as base64
    # like msgspec does; anything else by its repr rather than a crash.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


def to_json(value: object) -> str:
    """``value`` as one line of JSON (bytes as base64)."""
    return json.dumps(value, ensure_ascii=False, default=_jsonable)


def _print_json(value: object) -> None:
    print(to_json(value), flush=True)


def _error(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- commands ----------------------------------------------------------------------


def _call(args: argparse.Namespace) -> int:
    """``call``: print the result as JSON. Raises what `RPCClient.call` raises, `_UsageError`."""
    kwargs = _kwargs(args)
    target = Target(
        args.topic, server=args.server, exchange=args.exchange, namespace=args.namespace
    )
    with Transport(settings_from(args)) as transport:
        client = RPCClient(transport, target, timeout=args.timeout)
        _print_json(client.call(args.method, **kwargs))
    return EXIT_OK


def _cast(args: argparse.Namespace) -> int:
    """``cast``: send, print nothing. Raises what `RPCClient.cast` raises, `_UsageError`."""
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


def _notify(args: argparse.Namespace) -> int:
    """``notify``: print how many listeners it went to. Raises like `Notifier.notify`."""
    payload = _payload(args)
    with Transport(settings_from(args)) as transport:
        notifier = Notifier(transport, args.publisher_id, (args.topic,), exchange=args.exchange)
        sent = notifier.notify(args.priority, args.event_type, payload)
    _print_json(sent)
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


def _listen(args: argparse.Namespace) -> int:
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
            _error(f"listening on {args.topic} ({pool}) at {listener.address}")
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
        _error(
            f"MessagingTimeout: {printer.received} of {args.count} notifications "
            f"in {args.timeout:g}s"
        )
        return EXIT_TIMEOUT
    return EXIT_OK


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
    """The rows of `describe` as an aligned text table with a header."""
    header = ("KIND", "EXCHANGE", "TOPIC", "SERVER", "POOL", "ADDRESS", "EXPIRES")
    lines = [header]
    for row in rows:
        pool = "-" if row["kind"] != "notification" else row["pool"] or "(default)"
        lines.append(
            (
                row["kind"],
                row["exchange"],
                row["topic"],
                row["server"],
                pool,
                row["address"],
                f"in {row['expires_in']:.0f}s",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _targets(args: argparse.Namespace) -> int:
    """``targets``: list the matchmaker's entries. Raises `_CommandError` if it cannot."""
    spec = settings_from(args).matchmaker
    if spec.kind == "memory":
        _error(f"note: {spec.url} lives inside one process; this one has nothing registered")
    backend = create_matchmaker(spec.kind, spec.location, spec.password)
    try:
        entries = getattr(backend, "entries", None)
        if entries is None:
            msg = f"this matchmaker cannot list its entries ({spec.url})"
            raise _CommandError(msg)
        try:
            found: tuple[tuple[str, Route], ...] = entries()
        except Exception as exc:
            # Each backend has its own connection errors (OSError, redis-py's):
            # the operator needs the one line, not the stack.
            msg = f"cannot list the matchmaker's entries ({spec.url}): {exc}"
            raise _CommandError(msg) from exc
    finally:
        backend.close()
    now = time.time()
    rows = [describe(key, route, now) for key, route in found]
    if args.json:
        for row in rows:
            _print_json(row)
    elif rows:
        print(format_table(rows), flush=True)
    else:
        _error(f"nothing is registered in {spec.url}")
    return EXIT_OK


def _keygen(args: argparse.Namespace) -> int:
    """``keygen``: write a key pair and say where. Raises `ConfigurationError` for a bad DIR."""
    public, secret = keys.write_key_pair(args.directory, args.name)
    _error(f"public key (for the servers' curve_public_keys_dir): {public}")
    _error(f"secret key (this host's curve_secret_key_file, mode 0600): {secret}")
    _print_json({"public_key_file": str(public), "secret_key_file": str(secret)})
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "call": _call,
    "cast": _cast,
    "notify": _notify,
    "listen": _listen,
    "targets": _targets,
    "keygen": _keygen,
}


# -- main ----------------------------------------------------------------------------


def _configure_logging() -> None:
    # An application configures logging; the library never does. Stdout
    # carries results, so log lines go to stderr, warnings and worse only.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _run(command: str, args: argparse.Namespace, prog: str) -> int:  # noqa: PLR0911 - one return per exit code
    """Run ``command`` and turn every expected failure into a message and an exit code."""
    try:
        return _COMMANDS[command](args)
    except _UsageError as exc:
        _error(f"{prog}: error: {exc}")
        return EXIT_USAGE
    except RemoteError as exc:
        _error(f"RemoteError: {exc.exc_type}: {exc.value}")
        if getattr(args, "verbose", False) and exc.traceback:
            _error(exc.traceback.rstrip("\n"))
        return EXIT_ERROR
    except (MessagingTimeout, NoRespondersError) as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_TIMEOUT
    except ConfigurationError as exc:
        _error(f"{prog}: error: {exc}")
        return EXIT_USAGE
    except MessagingError as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_ERROR
    except ValueError as exc:
        # Bad Target names, method names and other values the library refuses.
        _error(f"{prog}: error: {exc}")
        return EXIT_USAGE
    except (_CommandError, OSError) as exc:
        _error(f"{prog}: error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Raises ``SystemExit`` (status 2) for arguments argparse refuses, and
    (status 0) for ``--help`` and ``--version``.
    """
    parser, subparsers = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from zmqactors import bench  # noqa: PLC0415 - only this command needs it

        return bench.main(rest)
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
    return _run(args.command, args, sub.prog)


if __name__ == "__main__":
    sys.exit(main())
