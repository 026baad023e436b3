"""``guanjia cloud wo``: butlers with rosters, webhooks, lists and the trail, against a real database."""

from __future__ import annotations

import asyncio
from datetime import time

import psycopg
import pytest
from typer.testing import CliRunner

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import default_policy
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
    result = runner.invoke(app, ["butler-add", "王师傅", "-c", "cl", "--skill", "elevator", "--shift",
                                 "mon-sun 00:00-00:00", "--phone", "13700001111"], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["webhook-add", "http://127.0.0.1:9/hook", "--secret", "k", "-c", "cl"], env=env)
    assert result.exit_code == 0, result.output

    async def raise_one() -> int:
        clock = SystemClock()
        async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as conn:
            r = await apply_event(conn, default_policy(), AlarmEvent(
                community="cl", device="lift-c", rule="elevator-passengers-trapped", state="raise",
                ts=to_ms(clock.now()), severity="critical", work_order=True, device_kind="elevator"), clock.now())
        assert r.work_order_id is not None
        return r.work_order_id

    wo_id = asyncio.run(raise_one())
    listed = runner.invoke(app, ["list", "--open"], env=env)
    assert listed.exit_code == 0
    assert "P0" in listed.output
    shown = runner.invoke(app, ["show", str(wo_id)], env=env)
    assert shown.exit_code == 0
    assert "opened" in shown.output
    assert "assign" in shown.output
    alarms = runner.invoke(app, ["alarms"], env=env)
    assert "ACTIVE_UNACK" in alarms.output
