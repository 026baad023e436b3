"""Wall time enters the cloud through one injected clock (issue 14, section 1).

An AST scan of ``cloud/`` and ``guanjia/`` fails when a wall-clock read reappears outside
:mod:`guanjia.core.clock`: ``datetime.now()``, ``datetime.utcnow()``, ``datetime.today()``,
``date.today()``, ``time.time()``, ``time.time_ns()`` (also as bare names imported from their
modules). ``time.monotonic()`` / ``perf_counter()`` measure durations and stay allowed. It also
checks that a :class:`guanjia.core.clock.SystemClock` is only *created* where wall time legitimately
enters (the CLI entry points and the two assembly points that run standalone); everything else
receives its clock. ``edge/`` (its own clock work) and ``simulators/`` (an accelerated sim clock)
are outside this rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("cloud", "guanjia")

WALL_CLOCK_ALLOWED: dict[str, str] = {
    "guanjia/core/clock.py": "SystemClock.now() is the one wall-clock read",
}

SYSTEM_CLOCK_ALLOWED: dict[str, str] = {
    "guanjia/core/clock.py": "defines it",
    "guanjia/app/cli/cloud.py": "`guanjia cloud serve/ingest`: wall time enters the service here",
    "guanjia/app/cli/cloud_analytics.py": "analytics commands: the default of --now/--at/--end",
    "cloud/service.py": "CloudService embedded without a clock (tests, benches) runs on the system clock",
    "cloud/app.py": "create_app used standalone (tests, benches) without a service context",
    "guanjia/app/cli/demo.py": "`guanjia demo`: the seeded operations history is dated back from the demo's start",
    "guanjia/app/cli/cloud_workorders.py": "`guanjia cloud wo butler-add/policy-import`: the time of the audit row",
}

_WALL_ATTRS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
               ("time", "time"), ("time", "time_ns")}
_WALL_NAMES = {("time", "time"), ("time", "time_ns")}  # `from time import time` then `time()`


def _sources() -> list[Path]:
    return sorted(p for top in SCANNED for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts)


def _dotted(node: ast.expr) -> list[str]:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


def wall_clock_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, call)`` of every wall-clock read in ``tree``."""
    bare: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("time",):
            bare |= {a.asname or a.name for a in node.names if (node.module, a.name) in _WALL_NAMES}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        parts = _dotted(node.func)
        if len(parts) >= 2 and (parts[-2], parts[-1]) in _WALL_ATTRS:
            found.append((node.lineno, ".".join(parts)))
        elif len(parts) == 1 and parts[0] in bare:
            found.append((node.lineno, parts[0]))
    return found


def system_clock_constructions(tree: ast.AST) -> list[int]:
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and _dotted(node.func)[-1:] == ["SystemClock"]]


def test_the_scanner_finds_every_spelling() -> None:
    source = ("import time, datetime as dt\nfrom time import time as now_s\nfrom datetime import date, datetime\n"
              "a = dt.datetime.now(dt.UTC)\nb = time.time()\nc = now_s()\nd = date.today()\n"
              "e = datetime.utcnow()\nf = time.monotonic()\ng = clock.now()\n")
    assert [line for line, _ in wall_clock_calls(ast.parse(source))] == [4, 5, 6, 7, 8]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_wall_clock_reads_outside_the_clock(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    if rel not in WALL_CLOCK_ALLOWED:
        calls = wall_clock_calls(tree)
        assert not calls, (f"{rel}: wall-clock reads {calls}; take `now` from the injected guanjia.core.clock.Clock "
                           "(ServiceContext.clock, app.state.clock) instead")
    if rel not in SYSTEM_CLOCK_ALLOWED:
        made = system_clock_constructions(tree)
        assert not made, (f"{rel}:{made}: SystemClock() created here; receive the process's clock instead "
                          "(or add an entry point to SYSTEM_CLOCK_ALLOWED with the reason)")


def test_the_allow_lists_name_existing_files() -> None:
    for rel in (*WALL_CLOCK_ALLOWED, *SYSTEM_CLOCK_ALLOWED):
        assert (ROOT / rel).is_file(), rel
