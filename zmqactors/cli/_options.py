"""What every command shares: exit codes, argument parsing, the transport's settings.

The transport URL comes from ``--url``, else ``--url-file PATH``, else
``$ZMQACTORS_URL``, else the ``--config-file``'s ``matchmaker_url``, else
``zmq://``. A URL may hold a Redis password: the file and the environment keep
it off the command line, where every user sees it in ``ps``. The file is
checked as OpenSSH checks a private key (see `read_url_file`).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import stat
from collections.abc import Callable
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

# What runs a command: its arguments in, its exit code out.
Runner = Callable[[argparse.Namespace], int]
# How a command module adds its subcommand: add(name, help, description).
AddParser = Callable[[str, str, str], argparse.ArgumentParser]
# A transport URL is a line; a file much larger than that is not one.
_MAX_URL_FILE = 64 * 1024


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
        f"(default: --url-file, else ${URL_ENV}, else the config file's matchmaker_url, "
        f"else {DEFAULT_URL})",
    )
    group.add_argument(
        "--url-file",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="read the transport URL from this file (yours or root's, mode 0600 or "
        "stricter, not a symbolic link): keeps a password in the URL out of ps",
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
        help="show the server's traceback of a remote error (servers send it "
        "only with their send_tracebacks option)",
    )
    return common


def exchange_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--exchange``, the exchange of the command's target."""
    parser.add_argument("--exchange", default=None, help="the target's exchange (default: default)")


def _url_file_error(path: str, problem: str) -> UsageError:
    return UsageError(f"--url-file '{path}' {problem}")


def read_url_file(path: str) -> str:
    """The transport URL written in the file at ``path`` (one line; white space stripped).

    The URL may hold a password, so the file must be a regular file (not a
    symbolic link, which is never followed), owned by this user or root, and
    neither readable nor writable by group or others. Raises `UsageError`
    naming the path and the problem otherwise, or when the file cannot be
    read, is empty or holds more than one line. The content is never shown.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _url_file_error(path, "is a symbolic link: refused") from None
        raise _url_file_error(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _url_file_error(path, "is not a regular file")
        if info.st_uid not in (os.geteuid(), 0):
            problem = f"is owned by uid {info.st_uid}, not by you (uid {os.geteuid()}) or root"
            raise _url_file_error(path, problem)
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            problem = f"has mode {mode:04o}: group and others must have no access (chmod 600)"
            raise _url_file_error(path, problem)
        data = os.read(fd, _MAX_URL_FILE + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_URL_FILE:
        raise _url_file_error(path, f"is larger than {_MAX_URL_FILE} bytes: not a URL")
    try:
        url = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _url_file_error(path, "is not UTF-8 text") from None
    if not url:
        raise _url_file_error(path, "is empty")
    if "\n" in url or "\r" in url:
        raise _url_file_error(path, "holds more than one line: write the URL alone")
    return url


def _load_config(path: str) -> cfg.ConfigOpts:
    """Read an oslo.config file; raises `UsageError` if it is missing or malformed."""
    conf = cfg.ConfigOpts()
    try:
        conf(args=[], project=None, default_config_files=[path], default_config_dirs=[])
    except cfg.Error as exc:
        msg = f"cannot read --config-file: {exc}"
        raise UsageError(msg) from None
    return conf


def transport_url(args: argparse.Namespace) -> str | None:
    """The URL the options ask for, or None (see the module docstring).

    Raises `UsageError` for ``--url`` with ``--url-file`` and for a bad URL file.
    """
    url: str | None = getattr(args, "url", None)
    url_file: str | None = getattr(args, "url_file", None)
    if url is not None and url_file is not None:
        msg = "--url and --url-file exclude each other: give one"
        raise UsageError(msg)
    if url_file is not None:
        return read_url_file(url_file)
    return url or os.environ.get(URL_ENV) or None


def settings_from(args: argparse.Namespace) -> Settings:
    """The transport settings the options ask for (see the module docstring).

    Raises `ConfigurationError` for a bad URL or option, `UsageError` for an
    unreadable config file or URL file.
    """
    url = transport_url(args)
    config_file: str | None = getattr(args, "config_file", None)
    if config_file is None:
        return parse_url(url or DEFAULT_URL)
    base = Settings.from_conf(_load_config(config_file))
    return base if url is None else parse_url(url, base)
