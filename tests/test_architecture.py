"""Guards of the layered house that import-linter cannot see (issue 16): AST scans and a cycle search.

import-linter checks the imports it can read. Two things hide from it, so they are checked here:

* **Imports by string** — ``importlib.import_module(...)``, ``import_module(...)`` imported from
  importlib, and ``__import__(...)``. A module named in a string is invisible to the layers
  contracts, and a registry of strings skipped a missing module silently; components and routers
  are registered by real imports instead.
* **Private names across modules** — ``from x import _name``. A leading underscore says "only this
  module uses it"; importing it elsewhere couples two modules through a detail neither declared.
  Make the name public (and document it) or move it to where both can use it.

A third rule is not about imports but about where SQL lives:

* **No SQL in routers, pages, the HTTP shell or the app tier** — SQL lives in query/repository
  modules with typed rows (``cloud/queries``, the repositories of ``cloud/ops``, ``cloud/db``), so
  an API schema and a page's view come from the same read model and a CLI command or a router
  cannot grow a private copy of a query. Checked on string constants (f-string parts included),
  so SQL built from pieces is caught by its keywords.

And one whole-graph check beside import-linter's ``acyclic_siblings`` contract:

* **No import cycle between any two modules** of the product (grimp's graph, the one import-linter
  builds, searched for strongly connected components).

Only the product packages are scanned: ``bench/`` and ``tests/`` sit beside the product.
Each failure names the file and line, so the message is the to-do list.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp

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


SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b")
"""SQL statements by their leading keywords. Case-sensitive on purpose: the code base writes SQL
keywords in capitals, and prose ("select a device") in help texts and docstrings is not SQL."""

NO_SQL = ("cloud/api", "cloud/web", "cloud/http", "cloud/app.py", "cloud/server.py", "guanjia/app")
"""Where SQL must not be written: the routers, the pages, the HTTP shell, the app's assembly
(``cloud/app.py``, ``cloud/server.py``, which were part of ``cloud/api``) and the app tier (CLI,
stack, demo). They call query and repository functions instead."""

SQL_EXEMPT: dict[str, str] = {
    "guanjia/app/stack/postgres.py":
        "supervises the local PostgreSQL server like pg_ctl does: it asks the server's catalog "
        "(pg_database) whether the product's database exists and creates it, before any schema "
        "or repository of the product can exist",
}
"""Files allowed to hold SQL, each with the reason."""


def sql_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, statement start)`` of every string constant in ``tree`` that holds SQL."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (match := SQL.search(node.value)):
            found.append((node.lineno, node.value[match.start():match.start() + 40].replace("\n", " ")))
    return sorted(found)


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


def test_the_sql_scanner_sees_what_it_looks_for() -> None:
    tree = ast.parse(
        'a = "SELECT 1"\nb = f"INSERT INTO t (a) VALUES ({x})"\nc = "UPDATE work_orders SET x = 1"\n'
        'd = """\n  DELETE FROM t"""\ne = "select a device"\nf = "an UPDATE of the SET"\n')
    assert [line for line, _ in sql_strings(tree)] == [1, 2, 3, 4]


def test_no_sql_in_routers_pages_or_the_app() -> None:
    offenders: list[str] = []
    for top in NO_SQL:
        base = ROOT / top
        for path in [base] if base.is_file() else sorted(base.rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name in SQL_EXEMPT:
                continue
            offenders += [f"{name}:{line}: {what}" for line, what in sql_strings(_parse(path))]
    assert not offenders, ("SQL outside query/repository modules (move it to cloud/queries or the owning "
                           "repository):\n" + "\n".join(offenders))


def test_sql_exemptions_are_still_needed() -> None:
    """An exemption whose file no longer holds SQL (or no longer exists) is removed, not kept."""
    stale = [name for name in SQL_EXEMPT
             if not (ROOT / name).exists() or not sql_strings(_parse(ROOT / name))]
    assert not stale, f"stale SQL exemptions: {stale}"


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative).

    import-linter's ``acyclic_siblings`` contract forbids cycles between *sibling* modules; this
    looks at the whole module graph at once, so a cycle through modules of different packages
    (``a.x -> b.y -> a.z -> ...``) cannot hide between two contracts."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph.find_modules_directly_imported_by(root)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.find_modules_directly_imported_by(nxt))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_sees_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(module)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    assert import_cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_no_import_cycle_between_any_modules() -> None:
    graph = grimp.build_graph(*PRODUCT)
    assert import_cycles(graph) == []
