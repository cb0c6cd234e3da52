"""The release and the toolchain agree with the source: lock, sdist, version.

- Every dependency that setup.cfg declares (runtime and every extra) is pinned
  in the lock, at a version its range admits: a dependency added to setup.cfg
  without ``make lock`` fails here, not on a fresh clone a month later.
- The sdist is a complete source tree: it holds every file git tracks (so
  ``make test`` runs from an unpacked sdist), and the wheel holds none of the
  tests.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK = REPO_ROOT / "requirements" / "dev.txt"
# Tracked files that neither building nor testing needs.
NOT_IN_SDIST = frozenset({".gitignore"})
BUILD_TIMEOUT = 120


def _declared() -> list[Requirement]:
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg")
    lines = parser["options"]["install_requires"].splitlines()
    for extra in parser["options.extras_require"].values():
        lines += extra.splitlines()
    return [Requirement(text) for line in lines if (text := line.split("#", 1)[0].strip())]


def _locked() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            requirement = Requirement(line.rstrip(" \\"))
            if requirement.marker is None or requirement.marker.evaluate():
                (spec,) = requirement.specifier
                pins[canonicalize_name(requirement.name)] = Version(spec.version)
    return pins


@pytest.mark.unit
def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    locked = _locked()
    problems = []
    for requirement in _declared():
        version = locked.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name} is not in the lock")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} is outside {requirement.specifier}")
    assert not problems, f"run `make lock`: {problems}"


@pytest.mark.unit
def test_the_lock_pins_every_line_exactly_with_hashes() -> None:
    text = LOCK.read_text()
    entries = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert entries
    assert all("==" in entry and entry.endswith("\\") for entry in entries), entries
    assert text.count("--hash=sha256:") >= len(entries)


def _tracked_files() -> set[str]:
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (an unpacked sdist): nothing to compare against")
    return {name for name in done.stdout.decode().split("\0") if name}


@pytest.mark.integration
def test_the_sdist_holds_every_tracked_file_and_the_wheel_no_tests(tmp_path: Path) -> None:
    tracked = _tracked_files() - NOT_IN_SDIST
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), "."],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
        timeout=BUILD_TIMEOUT,
    )
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    missing = sorted(name for name in tracked if name not in members)
    assert not missing, f"the sdist lacks {missing}: add them to MANIFEST.in"

    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        stray = [name for name in archive.namelist() if name.startswith(("tests/", "examples/"))]
    assert not stray
