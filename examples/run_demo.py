"""`make demo`: start the RPC server in the background, run the client against it, stop it."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
READY_TIMEOUT = 30.0


def main() -> int:
    """Run the demo; return the client's exit status."""
    print("starting examples/rpc_server.py ...", flush=True)
    server = subprocess.Popen(
        [sys.executable, str(HERE / "rpc_server.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None  # noqa: S101 - stdout=PIPE
        deadline = time.monotonic() + READY_TIMEOUT
        line = ""
        while time.monotonic() < deadline and not line.startswith("ready"):
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                print(f"the server exited with status {server.returncode}", file=sys.stderr)
                return 1
        if not line.startswith("ready"):
            print("the server did not become ready in time", file=sys.stderr)
            return 1
        print(f"server {line.split()[1]} listening on {line.split()[2]}\n", flush=True)
        print("running examples/rpc_client.py:", flush=True)
        client = subprocess.run(
            [sys.executable, str(HERE / "rpc_client.py")], timeout=60, check=False
        )
        return client.returncode
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        print("\nserver stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
