"""Broker access control: who may connect, publish and subscribe where (a real Mosquitto).

The promise (SECURITY.md): anonymous clients are refused; a gateway's credentials publish only
under ``guanjia/v1/{community}/{gateway}/`` and read only their own commands and their
community's device topics; a stolen gateway password cannot read or forge another site's data.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from cloud.registry.broker import BrokerAccount
from cloud.registry.provisioning import BrokerFiles, provision_devices
from guanjia.core.wire import INGEST_STATUS_FILTER, encode_ingest_behind, ingest_status_topic
from tests.support.mqtt import connect, publish, subscribe
from tests.support.services import BrokerHandle


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def test_anonymous_and_wrong_password_are_refused(broker: BrokerHandle) -> None:
    anon = connect(broker.host, broker.port, None, None)
    try:
        assert anon.refused is not None
        assert anon.refused.is_failure
    finally:
        anon.close()
    account, _ = broker.add_gateway(f"c{_uid()}", "gw-1")
    wrong = connect(broker.host, broker.port, account.username, account.password + "x")
    try:
        assert wrong.refused is not None
    finally:
        wrong.close()


def test_gateway_cannot_publish_outside_its_prefix(broker: BrokerHandle) -> None:
    community, other = f"c{_uid()}", f"c{_uid()}"
    mine, _ = broker.add_gateway(community, "gw-1")
    broker.add_gateway(other, "gw-1")
    watcher = connect(broker.host, broker.port, broker.admin.username, broker.admin.password)
    gw = connect(broker.host, broker.port, mine.username, mine.password)
    try:
        assert gw.refused is None
        assert subscribe(watcher, f"guanjia/v1/{community}/#").value < 0x80
        assert subscribe(watcher, f"guanjia/v1/{other}/#").value < 0x80
        assert subscribe(watcher, f"devices/{community}/#").value < 0x80
        forged = [
            f"guanjia/v1/{other}/gw-1/telemetry",  # another community's gateway
            f"guanjia/v1/{community}/gw-2/telemetry",  # a sibling gateway
            f"guanjia/v1/{community}/gw-1/cmd",  # its own command topic (only the cloud writes it)
            f"devices/{community}/b1-gate-1",  # pretend to be a device
        ]
        for topic in forged:
            reason = publish(gw, topic, b'{"forged": true}')
            assert reason is None or reason.value >= 0x80 or reason.value == 0x10, (topic, reason)
        assert publish(gw, f"guanjia/v1/{community}/gw-1/telemetry", b'{"ok": true}') is not None
        deadline = time.monotonic() + 5
        while not watcher.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # anything forged would have arrived by now
        topics = [t for t, _ in watcher.messages]
        assert topics == [f"guanjia/v1/{community}/gw-1/telemetry"], topics
    finally:
        gw.close()
        watcher.close()


def test_gateway_cannot_subscribe_outside_its_grants(broker: BrokerHandle) -> None:
    community, other = f"c{_uid()}", f"c{_uid()}"
    mine, _ = broker.add_gateway(community, "gw-1")
    gw = connect(broker.host, broker.port, mine.username, mine.password)
    admin = connect(broker.host, broker.port, broker.admin.username, broker.admin.password)
    try:
        # Mosquitto grants the SUBACK but delivers nothing the ACL denies: check delivery, not codes
        for topic in ("#", f"guanjia/v1/{other}/gw-1/cmd", f"guanjia/v1/{community}/gw-2/cmd",
                      f"guanjia/v1/{community}/+/telemetry", f"devices/{other}/#", "$SYS/#"):
            subscribe(gw, topic)
        subscribe(gw, f"guanjia/v1/{community}/gw-1/cmd")
        subscribe(gw, f"devices/{community}/#")
        for topic in (f"guanjia/v1/{other}/gw-1/cmd", f"guanjia/v1/{community}/gw-2/cmd",
                      f"guanjia/v1/{community}/gw-2/telemetry", f"devices/{other}/x"):
            publish(admin, topic, b"secret")
        publish(admin, f"guanjia/v1/{community}/gw-1/cmd", b"mine")
        publish(admin, f"devices/{community}/b1-gate-1", b"device")
        deadline = time.monotonic() + 5
        while len(gw.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        got = sorted(set(gw.messages))
        assert got == sorted({(f"guanjia/v1/{community}/gw-1/cmd", b"mine"),
                              (f"devices/{community}/b1-gate-1", b"device")}), got
    finally:
        gw.close()
        admin.close()


def test_device_account_is_confined_to_its_community(broker: BrokerHandle) -> None:
    """Issue 14 §4: MQTT devices (gates) have one account per community, not one shared ``devices``
    account: a gate password found in one estate cannot read or forge another estate's devices, nor
    publish anything a gateway or the cloud would take."""
    community, other = f"c{_uid()}", f"c{_uid()}"
    account = BrokerAccount.devices(community)
    assert account.username == f"dev-{community}"
    broker.add_account(account)
    broker.add_account(BrokerAccount.devices(other))
    dev = connect(broker.host, broker.port, account.username, account.password)
    watcher = connect(broker.host, broker.port, broker.admin.username, broker.admin.password)
    try:
        assert dev.refused is None
        for topic in ("#", f"devices/{other}/#", f"devices/{community}/#"):
            subscribe(dev, topic)
        subscribe(watcher, "#")
        for topic in (f"devices/{other}/b1-gate-1/state", f"guanjia/v1/{community}/gw-1/telemetry",
                      f"guanjia/v1/{community}/gw-1/cmd", "devices/b1-gate-1/state"):
            reason = publish(dev, topic, b'{"forged": true}')
            assert reason is None or reason.value >= 0x80 or reason.value == 0x10, (topic, reason)
        publish(watcher, f"devices/{other}/b1-gate-1/state", b"theirs")
        publish(dev, f"devices/{community}/b1-gate-1/state", b"mine")
        deadline = time.monotonic() + 5
        while not dev.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert sorted(set(dev.messages)) == [(f"devices/{community}/b1-gate-1/state", b"mine")]
        forged = [t for t, p in watcher.messages if p == b'{"forged": true}']
        assert forged == [], forged
    finally:
        dev.close()
        watcher.close()


def test_provisioned_device_account_replaces_its_lines_only(tmp_path: Path) -> None:
    """``guanjia cloud device account`` on a production broker's files: one account per community,
    rotating it replaces its own lines and keeps everyone else's."""
    files = BrokerFiles(tmp_path / "passwd", tmp_path / "acl")
    files.passwd.write_text("other:$7$hash\n")
    files.acl.write_text("user other\ntopic read x\n")
    first = provision_devices("north", files=files)
    second = provision_devices("north", files=files)
    assert first.password != second.password
    passwd = files.passwd.read_text().splitlines()
    assert passwd[0] == "other:$7$hash"
    assert [line.split(":")[0] for line in passwd] == ["other", "dev-north"]
    acl = files.acl.read_text()
    assert acl.count("user dev-north") == 1
    assert "topic readwrite devices/north/#" in acl
    assert "user other\ntopic read x" in acl


def test_gateway_reads_the_ingest_behind_status_and_cannot_write_it(broker: BrokerHandle) -> None:
    """Every gateway reads the ingest workers' ``behind`` status (issue 21); none may publish it —
    one that could would hold every other gateway's resends."""
    community = f"c{_uid()}"
    mine, _ = broker.add_gateway(community, "gw-1")
    gw = connect(broker.host, broker.port, mine.username, mine.password)
    admin = connect(broker.host, broker.port, broker.admin.username, broker.admin.password)
    worker = f"w-{_uid()}"
    try:
        subscribe(gw, INGEST_STATUS_FILTER)
        subscribe(admin, INGEST_STATUS_FILTER)
        status = encode_ingest_behind(worker, 12.0, 20.0, 0)
        publish(admin, ingest_status_topic(worker), status)  # as the cloud's ingest does
        forged = publish(gw, ingest_status_topic(f"{worker}-forged"), status)
        assert forged is None or forged.value >= 0x80 or forged.value == 0x10, forged
        deadline = time.monotonic() + 5
        while not gw.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a forged status would have reached the admin by now
        assert gw.messages == [(ingest_status_topic(worker), status)]
        assert admin.messages == [(ingest_status_topic(worker), status)]
    finally:
        gw.close()
        admin.close()
