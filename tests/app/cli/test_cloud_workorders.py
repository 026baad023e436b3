"""``guanjia cloud wo``: butlers with rosters, webhooks, lists and the trail, against a real database."""

from __future__ import annotations

import asyncio
from datetime import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import DEFAULT_POLICY, default_policy
from guanjia.app.cli.cloud_workorders import app, parse_shift
from guanjia.core.clock import SystemClock, to_ms
from guanjia.core.errors import ConfigError


def test_parse_shift() -> None:
    assert parse_shift("mon-fri 08:00-20:00")[0] == (0, time(8), time(20))
    assert [d for d, _, _ in parse_shift("sat-mon 20:00-08:00")] == [5, 6, 0]
    with pytest.raises(ConfigError):
        parse_shift("someday 8-20")


def test_cli_butler_webhook_list_show(wo_db: str) -> None:
    runner = CliRunner()
    env = {"GUANJIA_DATABASE_URL": wo_db, "COLUMNS": "250"}
    missing = runner.invoke(app, ["butler-add", "王师傅", "-c", "cl", "--skill", "elevator"], env=env)
    assert missing.exit_code != 0
    assert "no community 'cl'" in missing.output
    with psycopg.connect(wo_db, autocommit=True) as conn:
        conn.execute("INSERT INTO communities (code) VALUES ('cl') ON CONFLICT DO NOTHING")
    result = runner.invoke(app, ["butler-add", "王师傅", "-c", "cl", "--skill", "elevator", "--shift",
                                 "mon-sun 00:00-00:00", "--phone", "13700001111"], env=env)
    assert result.exit_code == 0, result.output
    with psycopg.connect(wo_db) as conn:  # the same audit row as the admin API writes
        row = conn.execute("SELECT action, actor FROM admin_audit ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None
    assert row[0] == "butler.created"
    assert row[1].startswith("cli:")
    result = runner.invoke(app, ["webhook-add", "http://127.0.0.1:9/hook", "--secret", "k", "-c", "cl"], env=env)
    assert result.exit_code == 0, result.output

    async def raise_one() -> int:
        clock = SystemClock()
        async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as conn:
            r = await apply_event(conn, default_policy(), AlarmEvent(
                community="cl", device="lift-c", rule="elevator-passengers-trapped", state="raise",
                ts=to_ms(clock.now()), severity="critical", work_order=True, device_kind="elevator",
                message="lift-c: passengers trapped", labels={"message_zh": "lift-c：困人"}), clock.now())
        assert r.work_order_id is not None
        return r.work_order_id

    wo_id = asyncio.run(raise_one())
    listed = runner.invoke(app, ["list", "--open"], env=env)
    assert listed.exit_code == 0
    assert "P0" in listed.output
    assert "困人" in listed.output  # Chinese by default
    shown = runner.invoke(app, ["show", str(wo_id)], env=env)
    assert shown.exit_code == 0
    assert "困人" in shown.output
    assert "passengers trapped" in runner.invoke(app, ["show", str(wo_id), "--lang", "en"], env=env).output
    assert "opened" in shown.output
    assert "assign" in shown.output
    alarms = runner.invoke(app, ["alarms"], env=env)
    assert "ACTIVE_UNACK" in alarms.output


def test_cli_policy_import(wo_db: str, tmp_path: Path) -> None:
    """A site's YAML becomes its community's policy: only what differs from the default is stored."""
    runner = CliRunner()
    env = {"GUANJIA_DATABASE_URL": wo_db, "COLUMNS": "250", "GUANJIA_WO_POLICY": ""}
    site = tmp_path / "site-policy.yaml"
    site.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace(
        "P2: {label: repair, respond: 2h,", "P2: {label: repair, respond: 30m,"), encoding="utf-8")
    with psycopg.connect(wo_db, autocommit=True) as conn:
        conn.execute("INSERT INTO communities (code) VALUES ('cp') ON CONFLICT DO NOTHING")
    result = runner.invoke(app, ["policy-import", "cp", str(site)], env=env)
    assert result.exit_code == 0, result.output
    assert "P2" in result.output
    with psycopg.connect(wo_db) as conn:
        row = conn.execute("SELECT sla FROM community_policies WHERE community = 'cp'").fetchone()
        audit = conn.execute("SELECT action FROM admin_audit ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None
    assert list(row[0]) == ["P2"]
    assert row[0]["P2"]["respond"] == 1800
    assert audit == ("policy.updated",)
    broken = tmp_path / "broken.yaml"
    broken.write_text("priorities: {P2: {respond: soon}}\n", encoding="utf-8")
    failed = runner.invoke(app, ["policy-import", "cp", str(broken)], env=env)
    assert failed.exit_code != 0

