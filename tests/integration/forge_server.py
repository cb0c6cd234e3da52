"""A hostile "server" for the bound-reply test: raw pyzmq, no zmqactors actors.

Binds a ROUTER on 127.0.0.1 port 0 and prints ``ready ADDRESS``. Remembers
the routing identity of the first client that sends it anything and prints
``peer``. Each line ``forge HEX`` on stdin makes it send that client a
`Reply` and a `Heartbeat` carrying message id HEX (a call the client sent to
another server), then print ``forged``. Exits at end of input.
"""

from __future__ import annotations

import sys

import zmq

from zmqactors import wire


def main() -> None:
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind("tcp://127.0.0.1:0")
    print(f"ready {router.getsockopt_string(zmq.LAST_ENDPOINT)}", flush=True)
    poller = zmq.Poller()
    poller.register(router, zmq.POLLIN)
    poller.register(sys.stdin, zmq.POLLIN)
    peer: bytes | None = None
    try:
        while True:
            for item, _ in poller.poll(10_000):
                if item is router:
                    identity, *_ = router.recv_multipart()
                    if peer is None:
                        peer = identity
                        print("peer", flush=True)
                    continue
                line = sys.stdin.readline()
                if not line:
                    return
                command, _, value = line.strip().partition(" ")
                if command == "forge" and peer is not None:
                    msg_id = bytes.fromhex(value)
                    for message in (wire.Heartbeat(msg_id), wire.Reply(msg_id, "forged")):
                        router.send_multipart([peer, *wire.encode(message)])
                    print("forged", flush=True)
    finally:
        router.close()
        context.term()


if __name__ == "__main__":
    main()
