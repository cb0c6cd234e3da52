"""An RPC server process that reports its counters and memory: ``ready ADDRESS``, SIGTERM to stop.

For the resource-limit tests (``test_limits.py``): ``stats()`` is the
transport's counters, ``memory()`` this process's resident and peak resident
set in bytes (``/proc/self/status``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import zmqactors as za

# Run as a script: the repository root is not on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.integration.serve import script_parser, start_script


def memory() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    found: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            found[name] = int(value.split()[0]) * 1024
    return found


class Endpoint:
    def __init__(self, transport: za.Transport) -> None:
        self._transport = transport

    def add(self, a: int, b: int) -> int:
        return a + b

    def stats(self) -> dict[str, int]:
        return dict(self._transport.stats.snapshot())

    def memory(self) -> dict[str, int]:
        return memory()


def main() -> None:
    parser = script_parser()
    parser.add_argument("--server", required=True)
    args, done = start_script(parser)
    with za.Transport.from_url(args.url) as transport:
        server = za.RPCServer(
            transport, za.Target(args.topic, server=args.server), [Endpoint(transport)]
        )
        with server:
            print(f"ready {server.address}", flush=True)
            done.wait()


if __name__ == "__main__":
    main()
