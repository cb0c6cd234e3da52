"""The wire decoder as an atheris fuzz target, for coverage-guided runs longer than CI's.

atheris is not a dependency (it is a native build on some platforms)::

    pip install atheris
    python tests/fuzz/fuzz_decoder.py -max_total_time=60

The property is the one ``tests/unit/test_fuzz_decoder.py`` checks on every
run: ``decode`` returns one of our messages or raises `ProtocolError`, and
nothing else; atheris reports any other exception with the input.
"""

from __future__ import annotations

import sys
import typing

import atheris

with atheris.instrument_imports():
    from zmqactors import wire
    from zmqactors.errors import ProtocolError

MAX = 64 * 1024
# Every message type the decoder may return (Ack included), from the union itself.
MESSAGE_TYPES = typing.get_args(wire.Message)


def test_one_input(data: bytes) -> None:
    """Decode ``data`` as a body, then split into frames; anything but ProtocolError is a bug."""
    provider = atheris.FuzzedDataProvider(data)
    frames = [wire.HEADER, provider.ConsumeBytes(provider.ConsumeIntInRange(0, MAX))]
    while provider.remaining_bytes() and len(frames) < 5:
        frames.append(provider.ConsumeBytes(provider.ConsumeIntInRange(0, 64)))
    for candidate in (frames[:2], frames):
        try:
            message = wire.decode(candidate, MAX)
        except ProtocolError:
            continue
        if not isinstance(message, MESSAGE_TYPES):
            msg = f"decode returned {type(message).__name__}"
            raise TypeError(msg)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
