"""Import rules checked on the source: a sans-IO codec, no eventlet, nothing that unpickles.

The checks read the package's files with `ast`, so an import inside a function
counts as much as one at module level. The codec's dependency graph follows
its own imports of zmqactors modules (``from zmqactors.x import y`` resolves to
``zmqactors/x/y.py`` when that is a module, else to ``zmqactors/x``), not the
parent packages' ``__init__`` files. The runtime tests then import the codec and
each ``core`` module through the real, lazy, package ``__init__`` with zmq and
pykka made unimportable. The layers themselves are import-linter contracts in
setup.cfg (``lint-imports``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "zmqactors"
CODEC = PACKAGE_DIR / "wire.py"
CODEC_BANNED = frozenset({"zmq", "pykka"})
PACKAGE_BANNED = frozenset({"eventlet", "pickle", "cPickle", "_pickle", "marshal", "shelve"})
BANNED_CALLS = frozenset({"eval", "exec"})


# -- the checker -------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    """``zmqactors.net.context`` for ``<root>/zmqactors/net/context.py``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(
    tree: ast.AST, this_module: str, *, is_package: bool
) -> list[tuple[tuple[str, ...], bool]]:
    """Every import anywhere in ``tree`` as ``(candidates, at_runtime)``, relative ones absolute.

    ``candidates`` are the modules the import may load, most specific first:
    ``from a import b`` gives ``("a.b", "a")`` (``b`` is a submodule or a name in ``a``).
    """
    found: list[tuple[tuple[str, ...], bool]] = []

    def visit(node: ast.AST, *, runtime: bool) -> None:
        if is_type_checking_block(node):
            runtime = False
        if isinstance(node, ast.Import):
            found.extend(((alias.name,), runtime) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = this_module.split(".")
                if not is_package:
                    package.pop()
                base_parts = package[: len(package) - (node.level - 1)]
                if node.module:
                    base_parts.append(node.module)
                base = ".".join(base_parts)
            else:
                base = node.module or ""
            found.extend(((f"{base}.{alias.name}", base), runtime) for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            found.append(((node.args[0].value,), runtime))
        for child in ast.iter_child_nodes(node):
            visit(child, runtime=runtime)

    visit(tree, runtime=True)
    return found


def resolve(candidates: tuple[str, ...], root: Path) -> Path | None:
    """The file under ``root`` of the first candidate module found there, or None."""
    for module in candidates:
        base = root.joinpath(*module.split("."))
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return path
    return None


def top_level(module: str) -> str:
    return module.split(".", 1)[0]


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def closure(start: Path, root: Path, package: str) -> set[Path]:
    """``start`` and every module of ``package`` it imports at runtime, transitively."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        name = module_name(path, root)
        for candidates, runtime in imported_modules(
            parse(path), name, is_package=path.name == "__init__.py"
        ):
            if not runtime or top_level(candidates[0]) != package:
                continue
            found = resolve(candidates, root)
            if found is not None and found not in seen:
                todo.append(found)
    return seen


def banned_imports(path: Path, root: Path, banned: frozenset[str]) -> list[str]:
    """``"file:module"`` for every import of a ``banned`` top-level module in ``path``."""
    name = module_name(path, root)
    modules = imported_modules(parse(path), name, is_package=path.name == "__init__.py")
    return sorted(
        {
            f"{path.relative_to(root).as_posix()}:{names[-1]}"
            for names, _ in modules
            if top_level(names[0]) in banned
        }
    )


def banned_calls(path: Path) -> list[str]:
    """``"file:line name"`` for every call of eval/exec (also as ``builtins.eval``)."""
    hits = []
    for node in ast.walk(parse(path)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = (
            func.id
            if isinstance(func, ast.Name)
            else func.attr
            if isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "builtins"
            else None
        )
        if name in BANNED_CALLS:
            hits.append(f"{path}:{node.lineno} {name}")
    return hits


def package_files() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


# -- the rules -------------------------------------------------------------------------


def test_codec_closure_is_found():
    files = closure(CODEC, REPO_ROOT, "zmqactors")
    assert CODEC in files
    # wire.py imports its exceptions: the walk must have followed that edge.
    assert PACKAGE_DIR / "errors.py" in files


def test_codec_and_what_it_imports_use_neither_zmq_nor_pykka():
    files = closure(CODEC, REPO_ROOT, "zmqactors")
    offenders = [hit for path in files for hit in banned_imports(path, REPO_ROOT, CODEC_BANNED)]
    assert offenders == []


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_module_imports_eventlet_or_an_unpickler(path):
    assert banned_imports(path, REPO_ROOT, PACKAGE_BANNED) == []


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_module_calls_eval_or_exec(path):
    assert banned_calls(path) == []


def test_package_has_modules_to_check():
    names = {p.name for p in package_files()}
    assert {"wire.py", "dispatch.py", "base.py", "errors.py"} <= names


# What the runtime tests below prove: in a fresh interpreter (``-I``: no
# PYTHONPATH, no user site, the working directory not on sys.path) whose import
# system refuses zmq and pykka (a sys.meta_path finder raising ImportError, as
# if they were not installed), the real package, lazy ``__init__`` included,
# imports the module and uses it, and loads no other zmqactors module than the
# ones listed. It does not prove that pip would install zmqactors without them:
# install_requires still names both.
_BLOCKED_IMPORT = """
import importlib, importlib.abc, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("zmq", "pykka"):
            raise ImportError(f"{{name}} is not installed (blocked by the test)")
        return None

sys.meta_path.insert(0, Refuse())
module = importlib.import_module({module!r})
{use}
print(sorted(m for m in sys.modules if m.split(".")[0] in ("zmq", "pykka", "zmqactors")))
"""


def run_blocked(module: str, use: str) -> list[str]:
    """Import ``module`` with zmq and pykka refused; the zmq/pykka/zmqactors modules loaded."""
    result = subprocess.run(
        [sys.executable, "-I", "-c", _BLOCKED_IMPORT.format(module=module, use=use)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT.parent,
    )
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout.strip())


def test_the_codec_imports_alone_without_zmq_or_pykka():
    use = (
        "frames = module.encode(module.Reply(module.new_msg_id(), 3))\n"
        "assert module.decode(frames, 1024).result == 3"
    )
    assert run_blocked("zmqactors.wire", use) == [
        "zmqactors",
        "zmqactors._limits",
        "zmqactors.errors",
        "zmqactors.wire",
    ]


def test_the_codec_works_in_a_venv_without_zmq_or_pykka(tmp_path):
    # A real environment that lacks them, not only a blocker: a new venv
    # (no access to this one's packages) given msgspec alone, the codec's
    # one dependency, and the source tree.
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    msgspec_dir = Path(msgspec.__file__).parent
    (Path(site) / "msgspec").symlink_to(msgspec_dir, target_is_directory=True)
    (Path(site) / "zmqactors-source.pth").write_text(f"{REPO_ROOT}\n")
    script = textwrap.dedent(
        """
        import importlib.util
        assert importlib.util.find_spec("zmq") is None, "zmq is installed"
        assert importlib.util.find_spec("pykka") is None, "pykka is installed"
        from zmqactors import wire
        frames = wire.encode(wire.Reply(wire.new_msg_id(), 3))
        assert wire.decode(frames, 1024).result == 3
        print("ok")
        """
    )
    done = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize(
    "module", sorted(f"zmqactors.core.{p.stem}" for p in (PACKAGE_DIR / "core").glob("[a-z]*.py"))
)
def test_the_pure_logic_imports_without_zmq_or_pykka(module):
    loaded = run_blocked(module, "")
    assert module in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("zmq", "pykka")]
    assert not [m for m in loaded if m.startswith(("zmqactors.actors", "zmqactors.net"))]


def test_the_blocker_refuses_what_it_should():
    # Else the tests above would pass with zmq quietly imported.
    script = _BLOCKED_IMPORT.format(module="zmqactors.transport", use="")
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT.parent,
    )
    assert result.returncode != 0
    assert "blocked by the test" in result.stderr


def test_the_public_api_loads_lazily():
    assert run_blocked("zmqactors", "assert module.__version__") == ["zmqactors"]


# -- the checker catches what it should (so the rules above can fail) --------------------


def write(root: Path, relative: str, source: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "source",
    [
        "import zmq\n",
        "import zmq.asyncio as za\n",
        "from zmq import Context\n",
        "from pykka import ActorRef\n",
        "def f():\n    import pykka\n",
        "class C:\n    def m(self):\n        from zmq.utils import z85\n",
        "import importlib\nimportlib.import_module('zmq')\n",
        "__import__('pykka')\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import zmq\n",
    ],
)
def test_checker_finds_banned_imports(tmp_path, source):
    path = write(tmp_path, "pkg/mod.py", source)
    assert banned_imports(path, tmp_path, CODEC_BANNED) != []


def test_checker_ignores_lookalikes(tmp_path):
    path = write(tmp_path, "pkg/mod.py", "import zmqactors\nimport pykkax\nfrom . import zmq\n")
    write(tmp_path, "pkg/__init__.py", "")
    assert banned_imports(path, tmp_path, CODEC_BANNED) == []


def test_checker_follows_absolute_relative_and_nested_imports(tmp_path):
    write(tmp_path, "pkg/__init__.py", "import zmq  # the package front door is not followed\n")
    start = write(tmp_path, "pkg/codec.py", "from pkg import helpers\nfrom .sub import deep\n")
    write(tmp_path, "pkg/helpers.py", "def f():\n    from pkg.sub.deep import thing\n")
    write(tmp_path, "pkg/sub/__init__.py", "")
    write(tmp_path, "pkg/sub/deep.py", "thing = 1\n")
    write(tmp_path, "pkg/sub/bad.py", "import pykka\n")
    write(
        tmp_path,
        "pkg/sub/typed.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import bad\n",
    )
    files = closure(start, tmp_path, "pkg")
    assert {p.relative_to(tmp_path).as_posix() for p in files} == {
        "pkg/codec.py",
        "pkg/helpers.py",
        "pkg/sub/deep.py",
    }
    write(tmp_path, "pkg/sub/deep.py", "from . import bad\n")
    files = closure(start, tmp_path, "pkg")
    assert tmp_path / "pkg/sub/bad.py" in files
    assert [h for p in files for h in banned_imports(p, tmp_path, CODEC_BANNED)] == [
        "pkg/sub/bad.py:pykka"
    ]


@pytest.mark.parametrize(
    "source",
    [
        "eval('1')\n",
        "def f(x):\n    return exec(x)\n",
        "import builtins\nbuiltins.eval('1')\n",
    ],
)
def test_checker_finds_eval_and_exec(tmp_path, source):
    assert banned_calls(write(tmp_path, "m.py", source)) != []


def test_checker_allows_methods_named_like_eval(tmp_path):
    assert banned_calls(write(tmp_path, "m.py", "db.eval('x')\nsession.exec(q)\n")) == []


@pytest.mark.parametrize(
    "source",
    ["import pickle\n", "from marshal import loads\n", "def f():\n    import shelve\n"],
)
def test_checker_finds_unpicklers(tmp_path, source):
    path = write(tmp_path, "pkg/m.py", source)
    assert banned_imports(path, tmp_path, PACKAGE_BANNED) != []
