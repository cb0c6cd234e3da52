"""Many RPC servers in one process, for the client scale tests: ``ready ADDRESS`` once all serve.

``--server PREFIX --count N`` serves ``PREFIX-0`` .. ``PREFIX-{N-1}`` on the
topic, each with one worker (``executor_size=1``), in one transport (all on
one socket, one address), or with ``--transport-each`` each in a transport
of its own (one address each: as many servers as a client has connections);
prints the first one's address once every one is registered; SIGTERM stops
them.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import zmqactors as za

# Run as a script: the repository root is not on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.integration.serve import script_parser, start_script


class Endpoint:
    def __init__(self, name: str) -> None:
        self.name = name

    def whoami(self) -> str:
        return self.name


def main() -> None:
    parser = script_parser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--transport-each", action="store_true")
    args, done = start_script(parser)
    with contextlib.ExitStack() as stack:
        transport = stack.enter_context(za.Transport.from_url(args.url))
        servers = []
        for i in range(args.count):
            if args.transport_each and i:
                transport = stack.enter_context(za.Transport.from_url(args.url))
            name = f"{args.server}-{i}"
            server = za.RPCServer(
                transport, za.Target(args.topic, server=name), [Endpoint(name)], executor_size=1
            )
            servers.append(stack.enter_context(server))
        print(f"ready {servers[0].address}", flush=True)
        done.wait()


if __name__ == "__main__":
    main()
