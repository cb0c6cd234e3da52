"""What every command shares: exit codes, argument parsing, the transport's settings.

The transport URL comes from ``--url``, else ``$ZMQACTORS_URL``, else the
``--config-file``'s ``matchmaker_url``, else ``zmq://``.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any, NoReturn

from oslo_config import cfg

from zmqactors.options import DEFAULT_URL, Settings, parse_url

if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130

URL_ENV = "ZMQACTORS_URL"


class UsageError(Exception):
    """A bad command-line argument; the message is shown as ``zmqactors CMD: error: ...``."""


class CommandError(Exception):
    """Something the user cannot fix with other arguments; exit 1 with the message."""


def positive_float(text: str) -> float:
    """Parse a positive number of seconds for argparse; raises ``ArgumentTypeError``."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        msg = f"expected a positive number of seconds, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_int(text: str) -> int:
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

    Raises `UsageError` for an argument without ``=`` or whose key is not an
    identifier, and for a key given twice.
    """
    result: dict[str, Any] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.isidentifier():
            msg = f"bad argument {pair!r}: expected KEY=VALUE with an identifier as KEY"
            raise UsageError(msg)
        if key in result:
            msg = f"argument {key!r} is given more than once"
            raise UsageError(msg)
        result[key] = parse_value(value)
    return result


def json_option(option: str, text: str | None) -> Any:
    """The JSON value of ``option``; raises `UsageError` naming it if ``text`` is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        msg = f"{option} is not valid JSON ({exc}): {text!r}"
        raise UsageError(msg) from None


def common_options() -> argparse.ArgumentParser:
    """The options every messaging command takes, before or after its name."""
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


def exchange_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--exchange``, the exchange of the command's target."""
    parser.add_argument("--exchange", default=None, help="the target's exchange (default: default)")


def _load_config(path: str) -> cfg.ConfigOpts:
    """Read an oslo.config file; raises `UsageError` if it is missing or malformed."""
    conf = cfg.ConfigOpts()
    try:
        conf(args=[], project=None, default_config_files=[path], default_config_dirs=[])
    except cfg.Error as exc:
        msg = f"cannot read --config-file: {exc}"
        raise UsageError(msg) from None
    return conf


def settings_from(args: argparse.Namespace) -> Settings:
    """The transport settings the options ask for (see the module docstring).

    Raises `ConfigurationError` for a bad URL or option, `UsageError` for an
    unreadable config file.
    """
    url: str | None = getattr(args, "url", None) or os.environ.get(URL_ENV) or None
    config_file: str | None = getattr(args, "config_file", None)
    if config_file is None:
        return parse_url(url or DEFAULT_URL)
    base = Settings.from_conf(_load_config(config_file))
    return base if url is None else parse_url(url, base)
