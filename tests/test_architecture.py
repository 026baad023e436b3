"""Guards of the layered house that import-linter cannot see (issue 16), as pure AST scans.

import-linter checks the imports it can read. Two things hide from it, so they are checked here:

* **Imports by string** — ``importlib.import_module(...)``, ``import_module(...)`` imported from
  importlib, and ``__import__(...)``. A module named in a string is invisible to the layers
  contracts, and a registry of strings skipped a missing module silently; components and routers
  are registered by real imports instead.
* **Private names across modules** — ``from x import _name``. A leading underscore says "only this
  module uses it"; importing it elsewhere couples two modules through a detail neither declared.
  Make the name public (and document it) or move it to where both can use it.

Only the product packages are scanned: ``bench/`` and ``tests/`` sit beside the product.
Each failure names the file and line, so the message is the to-do list.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("edge", "cloud", "guanjia", "rules", "device_profiles", "simulators")


def _sources() -> list[Path]:
    return sorted(p for top in PRODUCT for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts)


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def string_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, call)`` of every import by string in ``tree``."""
    bare: set[str] = set()  # local names bound to importlib.import_module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "importlib":
            bare |= {a.asname or a.name for a in node.names if a.name == "import_module"}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "import_module":
            found.append((node.lineno, "import_module"))
        elif isinstance(func, ast.Name) and (func.id == "__import__" or func.id in bare):
            found.append((node.lineno, func.id))
    return found


def private_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, "module._name")`` of every private name imported from another module.

    Dunder names (``__version__``) are public by convention; ``from __future__`` is not an import
    of a module's name at all."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
            continue
        for alias in node.names:
            name = alias.name
            if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                base = "." * node.level + (node.module or "")
                found.append((node.lineno, f"{base}.{name}" if node.module else f"{base}{name}"))
    return found


def _report(finder: str) -> list[str]:
    scan = {"string": string_imports, "private": private_imports}[finder]
    return [f"{path.relative_to(ROOT)}:{line}: {what}"
            for path in _sources() for line, what in scan(_parse(path))]


def test_the_scanners_see_what_they_look_for() -> None:
    """The scanners themselves, on a snippet: a silent scanner would pass every guard."""
    tree = ast.parse(
        "import importlib\nfrom importlib import import_module as im\n"
        "importlib.import_module('a')\nim('b')\n__import__('c')\n"
        "from x import _hidden, public, __version__\nfrom . import _rel\n")
    assert [line for line, _ in string_imports(tree)] == [3, 4, 5]
    assert private_imports(tree) == [(6, "x._hidden"), (7, "._rel")]


def test_no_imports_by_string_in_the_product() -> None:
    offenders = _report("string")
    assert not offenders, "imports by string (use a real import):\n" + "\n".join(offenders)


def test_no_private_names_imported_across_modules() -> None:
    offenders = _report("private")
    assert not offenders, "private names imported from another module:\n" + "\n".join(offenders)
