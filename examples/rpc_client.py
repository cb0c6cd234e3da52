"""An RPC client: a call, a cast, a direct call, a remote exception and a timeout.

    python examples/rpc_client.py [--url zmq://] [--topic demo] [--server NAME]

Run examples/rpc_server.py first (``make demo`` does both).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import structlog

import zmqactors as za


def show(what: str, outcome: str) -> None:
    """Print one step of the tour."""
    print(f"  {what:<44} -> {outcome}", flush=True)


def main() -> int:
    """Run the tour; return 0 if every step behaved as expected."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="zmq://", help="transport URL (default: zmq://)")
    parser.add_argument("--topic", default="demo")
    parser.add_argument("--server", default="demo-server", help="the server to call directly")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    ok = True

    with za.Transport.from_url(args.url) as transport:
        client = za.RPCClient(transport, za.Target(topic=args.topic), timeout=5.0)

        show("call add(a=2, b=3)", repr(client.call("add", a=2, b=3)))

        client.cast("log", line="hello from the client")
        deadline = time.monotonic() + 5.0
        lines: list[str] = []
        while not lines and time.monotonic() < deadline:
            lines = client.call("logged")
        show("cast log(line=...), then call logged()", repr(lines))
        ok &= bool(lines)

        direct = client.prepare(server=args.server, context={"user": "alice"})
        show(f"call whoami() on server {args.server!r} only", repr(direct.call("whoami")))

        try:
            client.call("divide", a=1, b=0)
            ok = False
        except za.RemoteError as exc:
            show("call divide(a=1, b=0)", f"RemoteError {exc.exc_type}: {exc.value}")

        started = time.monotonic()
        try:
            client.prepare(timeout=0.5).call("sleep", seconds=2.0)
            ok = False
        except za.MessagingTimeout:
            waited = time.monotonic() - started
            show("call sleep(seconds=2) with timeout=0.5", f"MessagingTimeout after {waited:.2f}s")
            ok &= waited < 1.0

        try:
            za.RPCClient(transport, za.Target(topic="nobody-serves-this")).call("add", a=1, b=1)
            ok = False
        except za.NoRespondersError as exc:
            show("call on a topic with no server", f"NoRespondersError: {exc}")

    print("demo: all steps behaved as expected" if ok else "demo: SOMETHING WENT WRONG")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
