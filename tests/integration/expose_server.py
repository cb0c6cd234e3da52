"""An RPC server process whose endpoint holds what an attacker would try to call.

Same arguments and output as ``serve.py`` (plus ``--exposed``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from serve import serve

import zmqactors as za


class Base:
    def inherited(self) -> str:
        return "inherited"


class Target(Base):
    def __init__(self, name: str) -> None:
        self.name = name
        self.ran: list[str] = []
        self.attribute = lambda: self.ran.append("attribute") or "attribute ran"

    @property
    def secret(self) -> str:
        self.ran.append("secret")
        return "getter ran"

    def ping(self) -> str:
        return "pong"

    @za.expose
    def chosen(self) -> str:
        return "chosen"

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def what_ran(self) -> list[str]:
        return list(self.ran)


if __name__ == "__main__":
    serve(Target)
