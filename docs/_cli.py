"""The command line's parser for sphinx-argparse, which wants a function returning it."""
# ruff: noqa: INP001  (docs/ holds Sphinx's files, not a package)

from __future__ import annotations

import argparse

from zmqactors.cli import build_parser

# sphinx-argparse reads help texts as reStructuredText, where ``*`` and a
# backquote start markup; the command's own --help shows them literally.
_LITERAL = str.maketrans({"*": r"\*", "`": r"\`", "|": r"\|"})


def _literal(text: str | None) -> str | None:
    return None if text is None else text.translate(_LITERAL)


def _escape(parser: argparse.ArgumentParser) -> None:
    parser.description = _literal(parser.description)
    parser.epilog = _literal(parser.epilog)
    for action in parser._actions:  # noqa: SLF001  (argparse has no public list)
        if action.help is not argparse.SUPPRESS:
            action.help = _literal(action.help)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001  (idem)
            for choice in action._choices_actions:  # noqa: SLF001  (idem)
                choice.help = _literal(choice.help)
            for sub in {id(p): p for p in action.choices.values()}.values():
                _escape(sub)


def parser() -> argparse.ArgumentParser:
    """The ``zmqactors`` command's top-level parser, with its subcommands."""
    top, _subparsers, _runners = build_parser()
    _escape(top)
    return top
