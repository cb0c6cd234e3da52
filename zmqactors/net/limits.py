"""The process's limits on sockets and file descriptors: set, checked, and named when hit.

Two limits stop a process from opening ZeroMQ sockets and connections:

- ``ZMQ_MAX_SOCKETS`` of the process's context (option ``max_sockets``), set
  by `prepare` through `zmqactors.net.context.configure`;
- ``RLIMIT_NOFILE``, the open-file limit: every socket holds a descriptor
  (its mailbox), every TCP connection and listener another. `prepare` raises
  the soft limit to the hard one, as servers commonly do, and warns when
  even that is below what the settings imply.

Both fail in libzmq with ``EMFILE`` ("Too many open files"); `limit_error`
tells them apart by counting the process's open descriptors, and turns
either into a `ResourceLimitError` naming the limit, its value and how to
raise it. `zmqactors.net.sockets` applies it wherever a socket is created,
bound or connected.
"""

from __future__ import annotations

import errno
import os
import resource
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

import structlog

from zmqactors.errors import ResourceLimitError
from zmqactors.net import context as process_context

if TYPE_CHECKING:
    import zmq

    from zmqactors.options import Settings

__all__ = ["EXPECTED_CONNECTIONS", "descriptors_exhausted", "limit_error", "prepare"]

_log = structlog.get_logger("zmqactors.limits")

# The connections a process is expected to hold besides its sockets: a
# client connected to a thousand servers, or a server with a thousand
# clients (issue #19's scale), each one descriptor.
EXPECTED_CONNECTIONS: Final = 1024
# Open descriptors this close to RLIMIT_NOFILE mean that limit, not
# max_sockets, refused the last one (libzmq opens a few at a time).
_DESCRIPTOR_SLACK: Final = 8

_lock = threading.Lock()
_prepared_pid = 0
_warned: set[tuple[int, int]] = set()


def prepare(settings: Settings) -> None:
    """Apply ``max_sockets`` and check ``RLIMIT_NOFILE``; at each transport start, any thread.

    The context's socket limit is set before its first socket (a later,
    larger value is logged: `zmqactors.net.context.configure`). The soft
    open-file limit is raised to the hard one once per process (logged at
    debug); if it stays below ``max_sockets`` plus `EXPECTED_CONNECTIONS`, a
    warning names it, once per value. Never raises for a limit: a process
    that needs fewer descriptors than its settings allow still works.
    """
    global _prepared_pid  # noqa: PLW0603 - once per process, fork included
    process_context.configure(settings.max_sockets)
    # Created (and its threads started) now, not when the first socket is
    # needed, maybe with no descriptor left (`process_context.get_context`).
    process_context.get_context()
    with _lock:
        first = _prepared_pid != os.getpid()
        _prepared_pid = os.getpid()
    soft = _raise_soft_limit() if first else resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    needed = settings.max_sockets + EXPECTED_CONNECTIONS
    if soft != resource.RLIM_INFINITY and soft < needed and (soft, needed) not in _warned:
        _warned.add((soft, needed))
        _log.warning(
            "the open-file limit is below what max_sockets implies",
            RLIMIT_NOFILE=soft,
            max_sockets=settings.max_sockets,
            needed=needed,
            hint="raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) or lower max_sockets",
        )


def _raise_soft_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft in {hard, resource.RLIM_INFINITY}:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        # An infinite hard limit (macOS) or one above the kernel's nr_open.
        _log.debug("could not raise RLIMIT_NOFILE", soft=soft, hard=hard, error=str(exc))
        return soft
    _log.debug("raised RLIMIT_NOFILE to its hard limit", soft=soft, hard=hard)
    return hard


def _open_descriptors() -> int | None:
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            return sum(1 for _ in Path(directory).iterdir())
        except OSError:
            continue
    return None


def descriptors_exhausted() -> ResourceLimitError | None:
    """The error to report if this process is at its open-file limit now, else None.

    For code that sees a failure libzmq reports only asynchronously (a
    connection its I/O thread could not open retries, with
    ``ZMQ_EVENT_CONNECT_RETRIED``): calling this then tells an exhausted
    ``RLIMIT_NOFILE`` from an unreachable peer. Any thread; lists the
    process's descriptors, so call it on failures only.
    """
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    opened = _open_descriptors()
    if opened is None or soft == resource.RLIM_INFINITY or opened < soft - _DESCRIPTOR_SLACK:
        return None
    return _nofile_error("open a connection", opened, soft)


def _nofile_error(what: str, opened: int, soft: int) -> ResourceLimitError:
    return ResourceLimitError(
        f"cannot {what}: the process has {opened} of its RLIMIT_NOFILE={soft} file "
        "descriptors open; raise that limit (ulimit -n, systemd LimitNOFILE=) or "
        "lower max_sockets"
    )


def limit_error(exc: zmq.ZMQError | OSError, what: str) -> ResourceLimitError | None:
    """The `ResourceLimitError` that ``exc`` means, or None if it is no limit. Any thread.

    ``what`` says what failed ("open a socket", "bind tcp://..."). ``EMFILE``
    is ``RLIMIT_NOFILE`` when the process's open descriptors are close to it,
    otherwise the context's ``max_sockets``; ``ENFILE`` is the system's file
    table.
    """
    if exc.errno == errno.ENFILE:
        return ResourceLimitError(
            f"cannot {what}: the system's file table is full (ENFILE); raise "
            "fs.file-max or close files elsewhere"
        )
    if exc.errno != errno.EMFILE:
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    opened = _open_descriptors()
    if soft != resource.RLIM_INFINITY and (opened is None or opened >= soft - _DESCRIPTOR_SLACK):
        return _nofile_error(what, opened or soft, soft)
    limit = process_context.max_sockets()
    return ResourceLimitError(
        f"cannot {what}: the process's ZeroMQ context holds its max_sockets={limit} "
        "sockets; raise the option max_sockets (set on the first transport the "
        "process starts)"
    )
