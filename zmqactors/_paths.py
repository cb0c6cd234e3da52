"""Directories the library creates for itself (the file matchmaker's store, `keygen`'s)."""

from __future__ import annotations

import os
from pathlib import Path

from zmqactors.errors import ConfigurationError

__all__ = ["private_directory"]


def private_directory(directory: str | os.PathLike[str], what: str) -> Path:
    """Make ``directory`` (mode 0700 when new) and return it, absolute.

    Raises `ConfigurationError` naming ``what`` and the path when it is not a
    directory, cannot be created, or is not writable.
    """
    # Absolute, so a later os.chdir() in the application does not move it.
    path = Path(directory).absolute()
    if path.exists() and not path.is_dir():
        msg = f"{what} '{path}' exists but is not a directory"
        raise ConfigurationError(msg)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"{what} '{path}' cannot be created: {exc.strerror or exc}"
        raise ConfigurationError(msg) from None
    if not os.access(path, os.W_OK | os.X_OK):
        msg = f"{what} '{path}' is not writable"
        raise ConfigurationError(msg)
    return path
