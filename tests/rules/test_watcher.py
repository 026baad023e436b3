"""Hot reload: a valid change is swapped in with state carried over; an invalid one keeps the old rules."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from rules import RuleEngine, RuleSet, RuleWatcher, load_ruleset
from tests.support.rules import T0, states

GOOD = """\
rules:
  - id: low-pressure
    severity: major
    kinds: [pump]
    message: "{device}: {value} bar"
    for: 1m
    threshold: {metric: p, below: 2}
"""


def bump_mtime(path: Path, step: int) -> None:
    # filesystems with coarse timestamps: make every rewrite visibly newer
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + step * 1_000_000_000))


def test_reload_swaps_valid_rules_and_keeps_old_on_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(GOOD)
    engine = RuleEngine(load_ruleset([tmp_path]))
    reloaded: list[RuleSet] = []
    events = []

    def apply(rs: RuleSet) -> None:
        reloaded.append(rs)
        events.extend(engine.reload(rs, T0 + 30_000))

    watcher = RuleWatcher([tmp_path], apply)
    assert watcher.poll() is False  # nothing changed

    engine.process("p1", "pump", T0, {"p": 1.5})  # pending for 1 minute

    # a broken edit: old rules stay, each problem logged as file:line: field: message
    path.write_text(GOOD.replace("severity: major", "severity: huge"))
    bump_mtime(path, 1)
    with caplog.at_level(logging.ERROR, logger="rules.watcher"):
        assert watcher.poll() is False
    assert reloaded == []
    assert f"{path}:3: rules.0.severity:" in caplog.text
    assert next(str(i) for i in watcher.last_issues).startswith(f"{path}:3: rules.0.severity:")
    assert watcher.rejected == 1
    assert len(watcher.current) == 1

    # a valid edit that only changes the message: swapped in, the pending minute still counts
    path.write_text(GOOD.replace('"{device}: {value} bar"', '"{device}: pressure {value} bar"'))
    bump_mtime(path, 2)
    assert watcher.poll() is True
    assert watcher.last_issues == []
    assert len(reloaded) == 1
    assert events == []
    engine.process("p1", "pump", T0 + 40_000, {"p": 1.5})
    [raised] = engine.tick(T0 + 60_000)
    assert raised.message == "p1: pressure 1.5 bar"

    # removing the rule clears its active alarm
    path.write_text("rules: []\n")
    bump_mtime(path, 3)
    assert watcher.poll() is True
    assert states(events) == [("low-pressure", "clear")]


def test_new_file_in_directory_is_picked_up(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    seen: list[int] = []
    watcher = RuleWatcher([tmp_path], lambda rs: seen.append(len(rs)))
    (tmp_path / "b.yaml").write_text(GOOD.replace("low-pressure", "other"))
    assert watcher.poll() is True
    assert seen == [2]


async def test_async_watcher_polls_in_its_own_task(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(GOOD)
    got: asyncio.Queue[RuleSet] = asyncio.Queue(maxsize=4)
    async with RuleWatcher([tmp_path], got.put_nowait, interval=0.02):
        path.write_text(GOOD.replace("low-pressure", "renamed"))
        bump_mtime(path, 1)
        rs = await asyncio.wait_for(got.get(), timeout=5)
    assert "renamed" in rs
