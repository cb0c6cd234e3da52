"""The test suite on every Python and at both ends of the dependency ranges.

Run through make (which puts pyenv's interpreters on PATH and the pinned nox
from the lock in charge): ``make matrix``, ``make test-oldest``,
``make test-latest``. Each session builds its own virtualenv under ``.nox/``.

- ``tests-3.11`` ... ``tests-3.13``: the locked toolchain
  (``requirements/dev.txt``, installed with its hashes) on each CPython that
  the machine has; an interpreter that is missing is skipped and reported.
- ``oldest``: each runtime dependency (``install_requires`` and the ``redis``
  and ``oslo`` extras) at the lowest release its range allows, the rest
  resolved around them; the suite alone (the linters are the lock's business).
- ``latest``: the newest release of everything, lint and suite, so drift shows
  up here as a report before it reaches the lock.
"""

from __future__ import annotations

import configparser
import pathlib
import shutil

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parent
LOCK = ROOT / "requirements" / "dev.txt"
PYTHONS = ("3.11", "3.12", "3.13")
RUNTIME_EXTRAS = ("redis", "oslo")

nox.options.sessions = [f"tests-{version}" for version in PYTHONS]
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = False


def _install_locked(session: nox.Session) -> None:
    """The lock, hash-checked, then zmqactors itself built by the locked setuptools."""
    session.install("--require-hashes", "--no-deps", "-r", str(LOCK))
    session.install("--no-deps", "--no-build-isolation", "-e", str(ROOT))
    session.run("python", "-m", "pip", "check")


def _locked_pins(*names: str) -> list[str]:
    """``name==version`` for each name, as the lock pins it (without its hashes)."""
    wanted = {canonicalize_name(name) for name in names}
    pins = [
        line.split(" ", 1)[0]
        for line in LOCK.read_text().splitlines()
        if line and not line.startswith((" ", "#"))
    ]
    found = [pin for pin in pins if canonicalize_name(pin.split("==")[0]) in wanted]
    if len(found) != len(wanted):
        msg = f"the lock does not pin all of {sorted(wanted)}: {found}"
        raise RuntimeError(msg)
    return found


def _pytest(session: nox.Session) -> None:
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *session.posargs)


def _runtime_requirements() -> list[Requirement]:
    """What a user's install pulls in: install_requires and the runtime extras."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    lines = parser["options"]["install_requires"].splitlines()
    for extra in RUNTIME_EXTRAS:
        lines += parser["options.extras_require"][extra].splitlines()
    requirements = {}
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            requirement = Requirement(text)
            requirements[requirement.name] = requirement
    return list(requirements.values())


@nox.session(name="tests", python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite with the locked toolchain."""
    _install_locked(session)
    _pytest(session)


@nox.session(python=PYTHONS[0])
def oldest(session: nox.Session) -> None:
    """The suite with every runtime dependency at the bottom of its range."""
    uv = shutil.which("uv")
    if uv is None:
        session.error("uv is not on PATH: run through `make test-oldest`")
    tmp = pathlib.Path(session.create_tmp())
    direct = tmp / "runtime.in"
    direct.write_text("".join(f"{r}\n" for r in _runtime_requirements()))
    # First pass: the lowest release that each range admits (and that installs
    # on this Python), for the direct runtime dependencies only.
    lowest = tmp / "lowest.txt"
    session.run(
        uv, "pip", "compile", "--quiet", "--resolution", "lowest-direct",
        "--python-version", PYTHONS[0], "--no-header", "--no-annotate",
        "-o", str(lowest), str(direct),
        external=True,
    )  # fmt: skip
    names = {canonicalize_name(r.name) for r in _runtime_requirements()}
    pins = [
        line
        for line in lowest.read_text().splitlines()
        if line and canonicalize_name(Requirement(line.split(";")[0]).name) in names
    ]
    constraints = tmp / "oldest-constraints.txt"
    constraints.write_text("".join(f"{pin}\n" for pin in pins))
    session.log("runtime dependencies at the bottom of their ranges: " + ", ".join(pins))
    # Second pass: the test extra resolved around those pins.
    resolved = tmp / "oldest.txt"
    session.run(
        uv, "pip", "compile", "--quiet", "--python-version", PYTHONS[0],
        "--no-header", "--extra", "test", "-c", str(constraints),
        "-o", str(resolved), str(ROOT / "setup.cfg"),
        external=True,
    )  # fmt: skip
    session.install("--no-deps", "-r", str(resolved))
    session.install("--no-deps", *_locked_pins("setuptools", "wheel"))
    session.install("--no-deps", "--no-build-isolation", "-e", str(ROOT))
    session.run("python", "-m", "pip", "check")
    session.run("python", "-m", "pip", "freeze", "--exclude-editable")
    _pytest(session)


@nox.session(python=PYTHONS[-1])
def latest(session: nox.Session) -> None:
    """Lint and suite with the newest release of everything (no lock)."""
    session.install("--upgrade", "setuptools", "wheel")
    session.install("--upgrade", "--no-build-isolation", "-e", f"{ROOT}[test,redis,oslo]")
    session.run("python", "-m", "pip", "freeze", "--exclude-editable")
    session.run("ruff", "check", str(ROOT))
    session.run("ruff", "format", "--check", str(ROOT))
    session.run("mypy", "--strict", str(ROOT / "zmqactors"))
    _pytest(session)
