"""What bounded decoding costs per body: ``python -m benchmarks.decode``.

Times `zmqactors.wire.decode_body` (with the default `DecodeLimits`) against
msgspec's decoder alone on the same bodies, in CPU time of this process (so
other processes on a busy machine disturb it less), best of several rounds.
The bodies: a typical 100-byte request, 10 KiB and 1 MiB of small maps, 1 MiB
held in one string (an oslo.messaging body), and two bombs the limits refuse.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from zmqactors import wire
from zmqactors.errors import ProtocolError

if TYPE_CHECKING:
    from collections.abc import Callable

ROUNDS = 9
# Each round lasts at least this long (seconds of CPU).
ROUND_TIME = 0.05


def _body(**args: Any) -> bytes:
    request = wire.Request(
        wire.new_msg_id(), wire.CallKind.CALL, "nova", "compute", None, None, None, "m", args, {}
    )
    return wire.encode(request)[1]


def _maps(count: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"n{i}", "v": i * 1.5} for i in range(count)]


BODIES: dict[str, bytes] = {
    "100 B request": _body(a=1, b="hello world", c=[1, 2, 3], d={"k": "v"}, e="x" * 20),
    "10 KiB, 350 small maps": _body(items=_maps(350)),
    "1 MiB, one string": _body(payload="x" * (1 << 20)),
    "1 MiB, 35,000 small maps": _body(items=_maps(35_000)),
    "bomb: 1 MiB of empty maps": _body(x=[{}] * (1 << 20)),
    "bomb: 100,000 x 10 empty maps": _body(x=[[{}] * 10] * 100_000),
}


def _per_call(func: Callable[[], object]) -> float:
    """CPU seconds per call of ``func``: the best of `ROUNDS` rounds."""
    best = float("inf")
    for _ in range(ROUNDS):
        calls = 0
        started = time.process_time()
        elapsed = 0.0
        while elapsed < ROUND_TIME:
            func()
            calls += 1
            elapsed = time.process_time() - started
        best = min(best, elapsed / calls)
    return best


def _decode(body: bytes, limits: wire.DecodeLimits) -> Callable[[], object]:
    def run() -> object:
        try:
            return wire.decode_body(body, limits)
        except ProtocolError as exc:
            return exc

    return run


def main() -> None:
    """Print one line per body: its size, decode_body's and msgspec's time in µs."""
    limits = wire.DecodeLimits()
    decoder = msgspec_decoder()
    print(f"{'body':32} {'bytes':>9} {'decode_body µs':>15} {'msgspec µs':>11}  outcome")
    for name, body in BODIES.items():
        outcome = _decode(body, limits)()
        ours = _per_call(_decode(body, limits)) * 1e6
        if isinstance(outcome, ProtocolError):
            alone, result = "-", f"refused: {outcome}"
        else:
            alone, result = f"{_per_call(functools.partial(decoder, body)) * 1e6:.1f}", "decoded"
        print(f"{name:32} {len(body):9} {ours:15.1f} {alone:>11}  {result}")


def msgspec_decoder() -> Callable[[bytes], object]:
    """The decoder `decode_body` uses, without the limits and checks around it."""
    return wire._decoder.decode  # noqa: SLF001 - the baseline is the module's own decoder


if __name__ == "__main__":
    main()
