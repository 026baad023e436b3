"""Remote commands in the cloud: the check against the profile, the queue and its outcomes.

The dispatcher's :meth:`~cloud.ops.fleet.dispatcher.CommandDispatcher.tick` runs here against the
real database with a pinned clock (:class:`~guanjia.core.clock.ManualClock`) and a publish seam
that records what would go to the broker; the real broker and a real edge agent are in
``test_round_trip.py``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from cloud.db.pool import open_pool
from cloud.ops.fleet import configs, repo
from cloud.ops.fleet.commands import submit
from cloud.ops.fleet.dispatcher import CommandDispatcher
from cloud.ops.fleet.errors import CommandRefused
from cloud.ops.fleet.validate import check_command, writable_points
from cloud.registry import store
from device_profiles.loader import LIBRARY, builtin_profiles
from guanjia.core.clock import ManualClock, to_ms
from guanjia.core.wire import encode_reply
from guanjia.core.wire_config import ConfigReport

T0 = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)
PUMP = "vfd-pump"


# ------------------------------------------------------------------------------ the check
@pytest.mark.parametrize(("point", "value", "reason"), [
    ("pressure_setpoint", 12, "out_of_range"),
    ("pressure_setpoint", 0.5, "out_of_range"),
    ("pressure_setpoint", "high", "bad_value"),
    ("pressure_setpoint", True, "bad_value"),
    ("outlet_pressure", 3, "not_writable"),
    ("no_such_point", 1, "unknown_point"),
])
def test_refused_in_the_cloud_with_the_edges_reason(point: str, value: Any, reason: str) -> None:
    with pytest.raises(CommandRefused) as info:
        check_command(builtin_profiles(), PUMP, point, value)
    assert info.value.reason == reason


def test_accepted_values() -> None:
    profiles = builtin_profiles()
    assert check_command(profiles, PUMP, "pressure_setpoint", 3.2) == 3.2
    assert check_command(profiles, PUMP, "fault_reset", True) is True
    assert check_command(profiles, PUMP, "speed_reference", 50) == 50


def test_unknown_profile_and_mqtt_devices_are_refused() -> None:
    with pytest.raises(CommandRefused) as info:
        check_command(builtin_profiles(), "my-custom-pump", "pressure_setpoint", 3)
    assert info.value.reason == "unknown_profile"
    with pytest.raises(CommandRefused) as info:
        check_command(builtin_profiles(), None, "pressure_setpoint", 3)
    assert info.value.reason == "unknown_profile"
    assert writable_points(builtin_profiles(), "access-gate") == []


def test_the_page_lists_writable_points_with_their_range() -> None:
    points = {p.name: p for p in writable_points(builtin_profiles(), PUMP)}
    setpoint = points["pressure_setpoint"]
    assert (setpoint.unit, setpoint.hint) == ("bar", "1 … 10")
    assert setpoint.label.zh != "pressure_setpoint"  # the profile's words, not the key
    assert "fault_reset" in points
    assert "outlet_pressure" not in points


# ------------------------------------------------------------------------------ the queue
@pytest.fixture
async def pool(fresh_db: str) -> Any:
    with psycopg.connect(fresh_db) as conn:
        store.add_gateway(conn, "cmdc", "gw-1")
        store.add_device(conn, "cmdc", "pump-1", gateway="gw-1", kind="pump", profile_id=PUMP)
        store.add_device(conn, "cmdc", "loose-1", kind="pump", profile_id=PUMP)
    async with open_pool(fresh_db, min_size=1, max_size=2) as p:
        yield p


async def _device(pool: AsyncConnectionPool[Any], code: str) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM devices WHERE code = %s", (code,))
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _submit(pool: AsyncConnectionPool[Any], clock: ManualClock, point: str, value: Any, *,
                  device: str = "pump-1", expires_in: dt.timedelta = dt.timedelta(minutes=10)) -> repo.CommandRow:
    device_id = await _device(pool, device)
    async with pool.connection() as conn:
        row = await submit(conn, device_id=device_id, point=point, value=value, issued_by="eng1", now=clock.now(),
                           expires_in=expires_in)
    assert row is not None
    return row


async def _load(pool: AsyncConnectionPool[Any], row: repo.CommandRow) -> repo.CommandRow:
    assert row.device_id is not None
    async with pool.connection() as conn:
        found = await repo.load_command(conn, row.device_id, row.command_id)
    assert found is not None
    return found


class Sent:
    """The publish seam: what the dispatcher hands to the broker."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, orjson.loads(payload)))


async def test_a_refused_command_is_audited_and_never_sent(pool: AsyncConnectionPool[Any]) -> None:
    clock = ManualClock(T0)
    row = await _submit(pool, clock, "pressure_setpoint", 12)
    assert (row.status, row.reason, row.issued_by) == ("rejected", "out_of_range", "eng1")
    assert row.finished_at == T0
    loose = await _submit(pool, clock, "pressure_setpoint", 3, device="loose-1")
    assert (loose.status, loose.reason) == ("rejected", "no_gateway")
    dispatcher, sent = CommandDispatcher(clock, "mqtt://unused"), Sent()
    dispatcher.online[("cmdc", "gw-1")] = True
    await dispatcher.tick(pool, sent)
    assert sent.messages == []
    assert (await _load(pool, row)).status == "rejected"


async def test_round_trip_states_and_a_late_reply(pool: AsyncConnectionPool[Any]) -> None:
    clock = ManualClock(T0)
    dispatcher, sent = CommandDispatcher(clock, "mqtt://unused", reply_timeout=dt.timedelta(seconds=30)), Sent()
    dispatcher.online[("cmdc", "gw-1")] = True
    ok = await _submit(pool, clock, "pressure_setpoint", 3.2)
    slow = await _submit(pool, clock, "fault_reset", True)
    assert ok.status == slow.status == "pending"
    await dispatcher.tick(pool, sent)
    assert [t for t, _ in sent.messages] == ["guanjia/v1/cmdc/gw-1/cmd"] * 2
    doc = sent.messages[0][1]
    assert doc["id"] == ok.command_id
    assert doc["device"] == "pump-1"
    assert doc["point"] == "pressure_setpoint"
    assert doc["value"] == 3.2
    assert doc["issued_by"] == "eng1"
    assert doc["expires"] == to_ms(T0 + dt.timedelta(minutes=10))
    assert (await _load(pool, ok)).status == "sent"
    await dispatcher.tick(pool, sent)
    assert len(sent.messages) == 2  # sent once

    clock.advance(dt.timedelta(seconds=2))
    reply = encode_reply(doc, gateway="gw-1", community="cmdc", ok=True, reason=None, detail="", ts=0)
    await dispatcher.on_message(pool, "guanjia/v1/cmdc/gw-1/cmd/reply", reply)
    done = await _load(pool, ok)
    assert (done.status, done.finished_at, done.late_reply) == ("done", T0 + dt.timedelta(seconds=2), False)
    # a reply naming the command, but from another gateway, changes nothing
    other = encode_reply(sent.messages[1][1], gateway="gw-9", community="cmdc", ok=True, reason=None, detail="", ts=0)
    await dispatcher.on_message(pool, "guanjia/v1/cmdc/gw-9/cmd/reply", other)
    assert (await _load(pool, slow)).status == "sent"

    clock.advance(dt.timedelta(seconds=31))
    await dispatcher.tick(pool, sent)
    timed_out = await _load(pool, slow)
    assert (timed_out.status, timed_out.reason) == ("timed_out", "timed_out")
    refusal = encode_reply(sent.messages[1][1], gateway="gw-1", community="cmdc", ok=False,
                           reason="device_offline", detail="pump-1 is offline", ts=0)
    await dispatcher.on_message(pool, "guanjia/v1/cmdc/gw-1/cmd/reply", refusal)
    late = await _load(pool, slow)
    assert (late.status, late.reason, late.late_reply) == ("refused", "device_offline", True)
    assert dispatcher.outcomes == {"sent": 2, "done": 1, "unknown_reply": 1, "timed_out": 1, "refused": 1}


async def test_an_offline_gateway_holds_commands_until_they_expire(pool: AsyncConnectionPool[Any]) -> None:
    clock = ManualClock(T0)
    dispatcher, sent = CommandDispatcher(clock, "mqtt://unused"), Sent()
    row = await _submit(pool, clock, "pressure_setpoint", 4, expires_in=dt.timedelta(minutes=5))
    await dispatcher.on_message(pool, "guanjia/v1/cmdc/gw-1/status", b'{"state": "offline"}')
    clock.advance(dt.timedelta(minutes=4))
    await dispatcher.tick(pool, sent)
    assert sent.messages == []
    assert (await _load(pool, row)).status == "pending"
    clock.advance(dt.timedelta(minutes=1))
    await dispatcher.tick(pool, sent)
    expired = await _load(pool, row)
    assert (expired.status, expired.sent_at) == ("expired", None)
    # the gateway comes back: the expired command does not fire late
    await dispatcher.on_message(pool, "guanjia/v1/cmdc/gw-1/status", b'{"state": "online"}')
    await dispatcher.tick(pool, sent)
    assert sent.messages == []
    # one queued while it was offline and still valid goes out when it is back
    fresh = await _submit(pool, clock, "pressure_setpoint", 5)
    await dispatcher.tick(pool, sent)
    assert [d["id"] for _, d in sent.messages] == [fresh.command_id]


async def test_a_failed_publish_puts_the_command_back(pool: AsyncConnectionPool[Any]) -> None:
    clock = ManualClock(T0)
    dispatcher = CommandDispatcher(clock, "mqtt://unused")
    dispatcher.online[("cmdc", "gw-1")] = True
    row = await _submit(pool, clock, "pressure_setpoint", 4)

    async def broken(topic: str, payload: bytes) -> None:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await dispatcher.tick(pool, broken)
    assert (await _load(pool, row)).status == "pending"
    sent = Sent()
    await dispatcher.tick(pool, sent)
    assert len(sent.messages) == 1


async def test_bad_replies_and_topics_are_ignored(pool: AsyncConnectionPool[Any]) -> None:
    dispatcher = CommandDispatcher(ManualClock(T0), "mqtt://unused")
    await dispatcher.on_message(pool, "guanjia/v1/cmdc/gw-1/cmd/reply", b"not json")
    await dispatcher.on_message(pool, "guanjia/v1/cmdc/gw-1/cmd/reply", b'{"id": 5, "ok": "yes"}')
    await dispatcher.on_message(pool, "not/a/topic", b"{}")
    await dispatcher.on_message(pool, "guanjia/v1/cmdc/gw-1/status", b"[]")
    assert dispatcher.outcomes == {"bad_reply": 2}
    assert dispatcher.online == {}


async def test_a_gateways_own_pushed_profile_checks_its_commands(pool: AsyncConnectionPool[Any], fresh_db: str) -> None:
    """A device on a site profile the library lacks is checked against the profile of the
    configuration version its gateway reports running (then the library); before that version
    runs there, the cloud cannot check it and refuses (``unknown_profile``)."""
    clock = ManualClock(T0)
    with psycopg.connect(fresh_db) as conn:
        store.add_device(conn, "cmdc", "site-pump-1", gateway="gw-1", kind="pump", profile_id="site-pump")
    shipped = (LIBRARY / f"{PUMP}.yaml").read_text(encoding="utf-8")
    site = shipped.replace(f"id: {PUMP}\n", "id: site-pump\n", 1)
    assert site != shipped
    before = await _submit(pool, clock, "pressure_setpoint", 3, device="site-pump-1")
    assert (before.status, before.reason) == ("rejected", "unknown_profile")
    async with pool.connection() as conn:
        gateway_id = await configs.gateway_by_code(conn, "cmdc", "gw-1")
        assert gateway_id is not None
        await configs.save_version(conn, gateway_id, "v1", {"profiles/site-pump.yaml": site, "devices.yaml": ""},
                                   by="eng1", at=T0, note="")
        await configs.record_report(conn, gateway_id, ConfigReport("good", "v1", "v1", "v1", "p1", None, "", 0), T0)
    accepted = await _submit(pool, clock, "pressure_setpoint", 3, device="site-pump-1")
    assert accepted.status == "pending"
    refused = await _submit(pool, clock, "pressure_setpoint", 12, device="site-pump-1")
    assert (refused.status, refused.reason) == ("rejected", "out_of_range")
