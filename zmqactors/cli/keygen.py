"""``zmqactors keygen``: write a CurveZMQ key pair for a host."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from zmqactors.cli._options import EXIT_OK
from zmqactors.cli._output import error, print_json
from zmqactors.net import keys

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from zmqactors.cli._options import Runner


def keygen(args: argparse.Namespace) -> int:
    """``keygen``: write a key pair and say where. Raises `ConfigurationError` for a bad DIR."""
    public, secret = keys.write_key_pair(args.directory, args.name)
    error(f"public key (for the servers' curve_public_keys_dir): {public}")
    error(f"secret key (this host's curve_secret_key_file, mode 0600): {secret}")
    print_json({"public_key_file": str(public), "secret_key_file": str(secret)})
    return EXIT_OK


def add_commands(add_parser: Callable[..., argparse.ArgumentParser]) -> dict[str, Runner]:
    """Add ``keygen`` with the subparsers' ``add_parser`` (no transport options); its runner."""
    keygen_parser = add_parser(
        "keygen",
        help="write a CurveZMQ key pair",
        description="Write a new CurveZMQ key pair into DIR (created, mode 0700, if "
        "missing): NAME.key, the public key, for the curve_public_keys_dir of the "
        "servers this host calls, and NAME.key_secret (mode 0600), this host's "
        "curve_secret_key_file. Existing files are never overwritten.",
    )
    keygen_parser.add_argument("directory", metavar="DIR")
    keygen_parser.add_argument(
        "--name", default=socket.gethostname(), help="the files' name (default: this host's name)"
    )
    return {"keygen": keygen}
