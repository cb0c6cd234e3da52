"""`make dist`: build the release artefacts in a clean directory and prove them.

1. ``python -m build`` writes the sdist and the wheel into a fresh directory
   (``dist/`` unless ``--outdir``), with the locked setuptools
   (``--no-isolation``: nothing is fetched at build time).
2. ``twine check`` reads their metadata as PyPI would.
3. The wheel holds ``py.typed``, the console script and both entry-point
   groups, and no tests, examples, benchmarks or tools.
4. The wheel goes into a new venv (its dependencies at the lock's versions),
   where ``zmqactors --version`` must print the package's version and three
   calls must round-trip through a real server, run from outside the source
   tree so that only the installed wheel can be imported.

Exits non-zero, naming the first check that failed.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "dev.txt"
SMOKE_TIMEOUT = 120.0
# Top-level folders of the repository that a wheel must never carry.
NOT_IN_WHEEL = ("tests/", "examples/", "benchmarks/", "tools/", "requirements/")
ENTRY_POINTS = (
    "[console_scripts]",
    "zmqactors = zmqactors.cli:main",
    "[oslo.config.opts]",
    "[oslo.messaging.drivers]",
    "zmq = zmqactors.oslo.driver:ZmqActorsDriver",
)

SMOKE = """
import zmqactors as za

class Calculator:
    def add(self, a, b):
        return a + b

with za.Transport.from_url("zmq+memory://") as transport:
    target = za.Target("smoke", server="one")
    with za.RPCServer(transport, target, [Calculator()]):
        client = za.RPCClient(transport, za.Target("smoke"), timeout=10)
        results = [client.call("add", a=i, b=i) for i in range(3)]
assert results == [0, 2, 4], results
print("smoke: 3 calls answered", results)
"""


class CheckFailedError(Exception):
    """One of the checks did not hold; the message says which."""


def run(*args: str | pathlib.Path, cwd: pathlib.Path = ROOT) -> str:
    """Run a command, echo it, return its output; raise CheckFailedError on failure."""
    shown = (str(a) if "\n" not in str(a) else "<script>" for a in args)
    print("+", " ".join(shown), flush=True)
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise CheckFailedError(f"{args[0]} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def project_version() -> str:
    """The version the package reports about itself, read without importing it."""
    done = run(sys.executable, "-c", "import zmqactors; print(zmqactors.__version__)")
    return done.strip()


def build(outdir: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Build both artefacts into outdir (emptied first); return (sdist, wheel)."""
    shutil.rmtree(outdir, ignore_errors=True)
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", outdir, ROOT)
    sdists = sorted(outdir.glob("*.tar.gz"))
    wheels = sorted(outdir.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        found = [path.name for path in sdists + wheels]
        raise CheckFailedError(f"expected one sdist and one wheel in {outdir}, found {found}")
    return sdists[0], wheels[0]


def check_version(wheel: pathlib.Path, version: str) -> None:
    """The wheel's file name carries the version that the package reports."""
    if f"-{version}-" not in wheel.name:
        raise CheckFailedError(f"{wheel.name} does not carry the package's version {version}")


def check_wheel(wheel: pathlib.Path) -> None:
    """py.typed and the entry points are in; tests, examples and tools are out."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
        if entry_points is None:
            raise CheckFailedError("the wheel has no entry_points.txt")
        declared = archive.read(entry_points).decode()
    if "zmqactors/py.typed" not in names:
        raise CheckFailedError("the wheel lacks zmqactors/py.typed")
    missing = [line for line in ENTRY_POINTS if line not in declared]
    if missing:
        raise CheckFailedError(f"the wheel's entry_points.txt lacks {missing}")
    stray = [n for n in names if n.startswith(NOT_IN_WHEEL)]
    if stray:
        raise CheckFailedError(f"the wheel carries files that are not the library's: {stray[:5]}")
    print(f"wheel: {len(names)} files, py.typed and entry points present, no tests or tools")


def hashless_constraints(dest: pathlib.Path) -> pathlib.Path:
    """The lock's pins without their hashes: pip refuses hashes in constraints."""
    pins = [
        line.rstrip(" \\")
        for line in LOCK.read_text().splitlines()
        if line and not line.startswith((" ", "#"))
    ]
    dest.write_text("".join(f"{pin}\n" for pin in pins))
    return dest


def smoke(wheel: pathlib.Path, version: str) -> None:
    """Install the wheel into a new venv; --version and three real calls."""
    with tempfile.TemporaryDirectory(prefix="zmqactors-dist-") as tmp:
        work = pathlib.Path(tmp)
        venv = work / "venv"
        run(sys.executable, "-m", "venv", venv)
        python = venv / "bin" / "python"
        constraints = hashless_constraints(work / "constraints.txt")
        run(python, "-m", "pip", "install", "-q", "-c", constraints, wheel, cwd=work)
        printed = run(venv / "bin" / "zmqactors", "--version", cwd=work).strip()
        if printed != version:
            raise CheckFailedError(f"zmqactors --version printed {printed!r}, expected {version!r}")
        print(f"zmqactors --version: {printed}")
        where = run(python, "-c", "import zmqactors; print(zmqactors.__file__)", cwd=work)
        if not where.startswith(str(venv)):
            raise CheckFailedError(f"the smoke test imported zmqactors from {where.strip()}")
        print(run(python, "-c", SMOKE, cwd=work).strip())


def main(argv: list[str] | None = None) -> int:
    """Build, check and smoke-test; 0 when every check holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=pathlib.Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    try:
        version = project_version()
        sdist, wheel = build(args.outdir)
        check_version(wheel, version)
        run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)
        check_wheel(wheel)
        smoke(wheel, version)
    except CheckFailedError as failure:
        print(f"make dist: FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"make dist: OK: {sdist.name}, {wheel.name} in {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
