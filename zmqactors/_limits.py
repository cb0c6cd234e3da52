"""What one message body may decode to: the value both `options` and `wire` read.

Pure and import-free, below `options` (whose defaults come from here) and
`wire` (which enforces them), so the numbers are written once.
"""

from __future__ import annotations

import dataclasses
from typing import Final

__all__ = [
    "DEFAULT_MAX_DECODED_BYTES",
    "DEFAULT_MAX_DECODED_DEPTH",
    "DEFAULT_MAX_DECODED_ITEMS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "SCAN_THRESHOLD",
    "DecodeLimits",
]

# What real deployments send: oslo.messaging users send instance and request
# specs of tens to hundreds of KiB; 4 MiB leaves an order of magnitude above
# that (ARCHITECTURE.md, "Wire protocol", compares other brokers).
DEFAULT_MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024
# Every msgpack object (map keys included). An empty map is one byte on the
# wire and about 72 bytes in Python, so this bounds a decoded body's
# containers to about 18 MiB.
DEFAULT_MAX_DECODED_ITEMS: Final = 256 * 1024
# Nesting of arrays and maps, the body's own array counting as one.
DEFAULT_MAX_DECODED_DEPTH: Final = 64
# Total length on the wire of every string, byte string and extension value.
DEFAULT_MAX_DECODED_BYTES: Final = 4 * 1024 * 1024
# Bodies at most this long are decoded without a scan: the worst they can
# become is about 72 bytes of Python objects per byte (empty maps), 2.3 MiB.
SCAN_THRESHOLD: Final = 32 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class DecodeLimits:
    """The bounds of one decoded message body (see `zmqactors.wire.decode_body`).

    ``max_size``: bytes of the body itself; ``max_items``: objects it holds
    (every value and map key); ``max_depth``: nesting of arrays and maps;
    ``max_bytes``: the total length of its strings, byte strings and
    extension values. Bodies longer than ``scan_above`` are scanned against
    the last three before they are decoded; shorter ones cannot exceed the
    item and byte limits, and their nesting is bounded by their size and by
    Python's recursion limit.

    Raises ``ValueError`` naming the field unless every limit is a positive int.
    """

    max_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_items: int = DEFAULT_MAX_DECODED_ITEMS
    max_depth: int = DEFAULT_MAX_DECODED_DEPTH
    max_bytes: int = DEFAULT_MAX_DECODED_BYTES
    scan_above: int = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check every limit and derive ``scan_above``."""
        for field in ("max_size", "max_items", "max_depth", "max_bytes"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"DecodeLimits.{field} must be a positive integer, got {value!r}"
                raise ValueError(msg)
        # A body has at most one object and one string byte per byte, so the
        # item and byte limits need no scan below their own values; and one
        # longer than max_size is always beyond scan_above, where it is measured.
        object.__setattr__(
            self, "scan_above", min(SCAN_THRESHOLD, self.max_size, self.max_items, self.max_bytes)
        )
