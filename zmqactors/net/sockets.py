"""How every socket is created and configured, in one place, and what a limit there raises.

Creating a socket, binding it, connecting it or attaching a monitor can hit
a limit of the process (``RLIMIT_NOFILE``) or of its ZeroMQ context
(``max_sockets``); each raises `ResourceLimitError` naming the limit
(`zmqactors.net.limits.limit_error`), never a raw ``ZMQError``. Any other
``ZMQError`` is raised unchanged.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from typing import TYPE_CHECKING

import zmq

from zmqactors.net.limits import limit_error

if TYPE_CHECKING:
    from collections.abc import Iterator

    from zmqactors.options import Settings

__all__ = ["bind", "connect", "monitor", "named_limits", "network_socket"]

# Monitor endpoint names, unique in the process (see `monitor`).
_monitor_ids = itertools.count()


@contextlib.contextmanager
def named_limits(what: str) -> Iterator[None]:
    """Turn a ``ZMQError`` that means a limit into `ResourceLimitError` (``what`` failed).

    For pyzmq calls not wrapped here; other ``ZMQError`` s pass unchanged.
    """
    try:
        yield
    except zmq.ZMQError as exc:
        error = limit_error(exc, what)
        if error is None:
            raise
        raise error from None


def _socket(context: zmq.Context[zmq.Socket[bytes]], kind: int) -> zmq.Socket[bytes]:
    with named_limits("open a ZeroMQ socket"):
        return context.socket(kind)


def network_socket(
    context: zmq.Context[zmq.Socket[bytes]], kind: int, settings: Settings
) -> zmq.Socket[bytes]:
    """A socket of ``kind`` for TCP peers of either IP family, with every limit set.

    Call from the thread that will own the socket. Raises `ResourceLimitError`
    when a limit refuses the socket.
    """
    sock = _socket(context, kind)
    # Without it libzmq neither binds nor connects IPv6 addresses. With it, an
    # IPv4 address still works (as an IPv4-mapped one), "*" binds both
    # families, and where the kernel has no IPv6 libzmq falls back to IPv4.
    sock.setsockopt(zmq.IPV6, 1)
    sock.setsockopt(zmq.LINGER, int(settings.linger * 1000))
    sock.setsockopt(zmq.SNDHWM, settings.high_water_mark)
    sock.setsockopt(zmq.RCVHWM, settings.high_water_mark)
    # A frame larger than this is refused by libzmq before it reaches Python;
    # the envelope's own overhead is small, so allow a little above the body limit.
    sock.setsockopt(zmq.MAXMSGSIZE, settings.max_message_size + 4096)
    # A peer that connects and never finishes its handshake is dropped.
    sock.setsockopt(zmq.HANDSHAKE_IVL, round(settings.handshake_timeout * 1000))
    return sock


def bind(sock: zmq.Socket[bytes], endpoint: str) -> None:
    """``sock.bind(endpoint)``; `ResourceLimitError` if a limit refuses it. The owner's thread.

    A TCP bind opens its listening descriptor at once, so ``RLIMIT_NOFILE``
    shows here; other errors (the address in use, ...) are raised unchanged.
    """
    with named_limits(f"bind {endpoint}"):
        sock.bind(endpoint)


def connect(sock: zmq.Socket[bytes], endpoint: str) -> None:
    """``sock.connect(endpoint)``; `ResourceLimitError` if a limit refuses it. The owner's thread.

    A TCP connection is opened later by libzmq's I/O thread: a limit met
    there cannot fail this call. libzmq then retries the connection
    (``ZMQ_EVENT_CONNECT_RETRIED`` on the socket's monitor), and
    `zmqactors.net.limits.descriptors_exhausted` tells that case from an
    unreachable peer.
    """
    with named_limits(f"connect to {endpoint}"):
        sock.connect(endpoint)


def monitor(sock: zmq.Socket[bytes], events: int) -> zmq.Socket[bytes]:
    """A PAIR socket receiving ``sock``'s ``events``; `ResourceLimitError` on a limit.

    The monitor is one more socket of the context (and descriptor). Call from
    ``sock``'s owner thread; the monitor belongs to that thread too.
    """
    # A name of our own, never reused in the process: pyzmq's default names
    # the endpoint after the socket's descriptor, which a later socket may
    # get while the closed one's monitor endpoint is still being torn down.
    addr = f"inproc://zmqactors-monitor-{os.getpid()}-{next(_monitor_ids)}"
    with named_limits("open a socket monitor"):
        return sock.get_monitor_socket(events, addr)
