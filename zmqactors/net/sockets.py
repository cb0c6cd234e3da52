"""How every socket that faces the network is configured, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

import zmq

if TYPE_CHECKING:
    from zmqactors.options import Settings

__all__ = ["inproc_socket", "network_socket"]


def network_socket(
    context: zmq.Context[zmq.Socket[bytes]], kind: int, settings: Settings
) -> zmq.Socket[bytes]:
    """A socket of ``kind`` for TCP peers of either IP family, with every limit set.

    Call from the thread that will own the socket.
    """
    sock = context.socket(kind)
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


def inproc_socket(context: zmq.Context[zmq.Socket[bytes]], kind: int) -> zmq.Socket[bytes]:
    """A socket for talking to another actor of this process over ``inproc://``."""
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    # Inproc queues are bounded by the poller's own flow control, not by HWM.
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    return sock
