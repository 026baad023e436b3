"""The local stack starts real services on free ports and enforces broker ACLs."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import psycopg
import pytest

from cloud.registry.broker import BrokerAccount
from guanjia.core.errors import StackError
from guanjia.core.settings import MqttUrl
from tests.support import mqtt
from tests.support.services import BrokerHandle


def test_postgres_fixture_is_real(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    assert row[0] >= 150000


def _client(url: str, **kw: object) -> aiomqtt.Client:
    u = MqttUrl.parse(url)
    return aiomqtt.Client(u.host, u.port, username=u.username, password=u.password, **kw)  # type: ignore[arg-type]


async def test_anonymous_refused(broker: BrokerHandle) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(broker.host, broker.port):
            pass


async def test_gateway_cannot_publish_under_another_prefix(broker: BrokerHandle) -> None:
    community = f"acl-{uuid.uuid4().hex[:8]}"  # the session broker is shared with other tests
    _, url_a = broker.add_gateway(community, "gw-a")
    got: list[str] = []
    async with _client(broker.admin_url) as watcher:
        await watcher.subscribe(f"guanjia/v1/{community}/#", qos=1)

        async def collect() -> None:
            async for msg in watcher.messages:
                got.append(str(msg.topic))

        task = asyncio.create_task(collect())
        async with _client(url_a) as gw:
            await gw.publish(f"guanjia/v1/{community}/gw-b/telemetry", b"{}", qos=1)  # someone else's
            await gw.publish(f"guanjia/v1/{community}/gw-a/telemetry", b"{}", qos=1)  # its own
        await asyncio.sleep(0.5)
        task.cancel()
    assert got == [f"guanjia/v1/{community}/gw-a/telemetry"]


def test_password_hash_matches_mosquitto_format() -> None:
    from cloud.registry.broker import hash_password

    h = hash_password("secret", salt=b"0" * 12)
    assert h.startswith("$7$101$")
    assert BrokerAccount.gateway("c", "g").username == "gw-c-g"


def test_accounts_added_back_to_back_are_accepted_at_once(broker: BrokerHandle) -> None:
    """``set_accounts`` returns only once the broker accepts the account (a reload signal lost
    during an earlier reload is sent again), so a client may connect straight away."""
    community = f"hup-{uuid.uuid4().hex[:8]}"
    accounts = [BrokerAccount.gateway(community, f"gw-{i}") for i in range(5)]
    for account in accounts:
        broker.add_account(account)
    for account in accounts:
        assert mqtt.logs_in(broker.host, broker.port, account.username, account.password), account.username


def test_reload_names_an_account_the_broker_keeps_refusing(broker: BrokerHandle) -> None:
    never_written = BrokerAccount.gateway(f"hup-{uuid.uuid4().hex[:8]}", "gw-x")
    with pytest.raises(StackError, match="still refuses"):
        broker.server.reload(confirm=[never_written], timeout=0.5)
