"""The documentation site documents the whole public surface.

`make docs` fails on any warning; these tests catch what a clean build can
still leave out: a public name added to ``zmqactors.__all__`` but not to the
API page, an option the options page misses, a subcommand the command line
page misses. The site is built once, by Sphinx in a child process (its
imports of oslo.messaging stay out of this one), into a temporary directory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import zmqactors
from zmqactors.cli import build_parser
from zmqactors.options import list_opts

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 300


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(REPO_ROOT / "docs"), str(out)],
        check=True,
        timeout=BUILD_TIMEOUT,
        cwd=REPO_ROOT,
    )
    return out


def test_every_public_name_is_in_the_api_reference(site: Path) -> None:
    page = (site / "reference" / "api.html").read_text()
    missing = [
        name
        for name in zmqactors.__all__
        if name != "__version__"
        and f'id="zmqactors.{name}"' not in page
        and f'id="zmqactors.errors.{name}"' not in page
    ]
    assert missing == []


def test_every_option_is_on_the_options_page(site: Path) -> None:
    page = (site / "reference" / "options.html").read_text()
    [(group, opts)] = list_opts()
    assert opts
    missing = [opt.name for opt in opts if f'id="{group}.{opt.name}"' not in page]
    assert missing == []


def test_every_command_is_on_the_command_line_page(site: Path) -> None:
    page = (site / "reference" / "cli.html").read_text()
    _parser, subparsers, _runners = build_parser()
    assert {"call", "cast", "notify", "listen", "targets", "keygen"} <= set(subparsers)
    missing = [name for name in subparsers if f'id="zmqactors-{name}"' not in page]
    assert missing == []
