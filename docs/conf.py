"""Sphinx configuration of the zmqactors documentation site (`make docs`)."""
# ruff: noqa: INP001  (docs/ holds Sphinx's files, not a package)

from __future__ import annotations

import pathlib
import sys
from typing import TYPE_CHECKING

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

if TYPE_CHECKING:
    from sphinx.application import Sphinx

# The driver's import chain tries eventlet (futurist, oslo.service) where it is
# installed; zmqactors never uses it, and the driver's tests keep it out the same way.
sys.modules.setdefault("eventlet", None)  # type: ignore[arg-type]

# docs/ itself, for the _cli helper module that sphinx-argparse imports, and the
# checkout, for the benchmarks package (run from a checkout, never installed).
_DOCS = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(_DOCS), str(_DOCS.parent)]

import zmqactors  # noqa: E402  (after the path set-up above)

# The oslo page documents the driver, which imports oslo.messaging, which
# imports oslo.service: tell it to use threads, as the driver's own tests do,
# rather than load its eventlet backend.
try:
    from oslo_service import backend as _oslo_service_backend
except ImportError:  # oslo.service is a dependency of oslo.messaging only
    pass
else:
    _oslo_service_backend.init_backend(_oslo_service_backend.BackendType.THREADING)

project = "zmqactors"
author = "the zmqactors authors"
copyright = "the zmqactors authors"  # noqa: A001  (the name Sphinx reads)
release = zmqactors.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinxarg.ext",
    "oslo_config.sphinxext",
]

exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"zmqactors {release}"
templates_path: list[str] = []

# Quotes and ellipses only: "--url-file" in a help text must not become an en dash.
smartquotes_action = "qe"

# `single backquotes` are code, as in the docstrings (which use them for names).
default_role = "code"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}

# -n (nitpicky): every reference must resolve. The build runs offline, so
# there is no intersphinx: names of the standard library and of other
# projects in signatures, and the package's private types, stay plain text.
nitpick_ignore_regex = [
    ("py:class", r"concurrent\.futures\..*|cfg\.ConfigOpts"),
    ("py:class", r"(zmqactors\.[a-z_.]+\.)?_\w+|Settings|Exposure|ServerStats"),
]


class BenchPlot(SphinxDirective):
    """``.. bench-plot:: images/NAME.png``: the plot `make bench` wrote, or how to make it.

    The plots are the benchmark's output, not sources: a build without them
    says so in the page rather than failing.
    """

    required_arguments = 1
    option_spec = {"alt": directives.unchanged}  # noqa: RUF012  (docutils' interface)

    def run(self) -> list[nodes.Node]:
        """Return an image node when the file exists, else a paragraph naming it."""
        uri = self.arguments[0]
        _docname, path = self.env.relfn2path(uri, self.env.docname)
        if pathlib.Path(path).is_file():
            return [nodes.image(uri=uri, alt=self.options.get("alt", ""))]
        text = f"({uri} is not in this build: run make bench in a checkout, then make docs.)"
        return [nodes.paragraph(text=text)]


def setup(app: Sphinx) -> None:
    """Register the `bench-plot` directive."""
    app.add_directive("bench-plot", BenchPlot)
