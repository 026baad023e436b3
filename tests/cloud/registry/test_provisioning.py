"""Provisioning on a production broker's files: concurrent writers lose no account, and every
account written is accepted by a real Mosquitto once ``put_account`` returns."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cloud.registry.broker import BrokerAccount
from cloud.registry.provisioning import BrokerFiles, put_account, remove_account
from tests.support import mqtt
from tests.support.services import BrokerHandle


def test_concurrent_enrolments_keep_every_account(tmp_path: Path) -> None:
    files = BrokerFiles(tmp_path / "passwd", tmp_path / "acl")
    accounts = [BrokerAccount.gateway("north", f"gw-{i}") for i in range(12)]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda a: put_account(files, a), accounts))
    names = sorted(line.split(":")[0] for line in files.passwd.read_text().splitlines())
    assert names == sorted(a.username for a in accounts)
    acl = files.acl.read_text()
    assert all(acl.count(f"user {a.username}\n") == 1 for a in accounts)


def test_accounts_written_back_to_back_can_all_log_in(own_broker: BrokerHandle) -> None:
    """Each write signals the broker; a signal that lands during another writer's reload is
    lost by Mosquitto, which is why ``put_account`` signals twice. Every account logs in. (A broker
    of the test's own: its files are edited by hand here, as on a production broker.)"""
    server = own_broker.server
    files = BrokerFiles(server.directory / "passwd", server.directory / "acl", server.pid())
    accounts = [BrokerAccount.gateway("south", f"gw-{i}") for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda a: put_account(files, a), accounts))
    for account in accounts:
        assert mqtt.logs_in(server.host, server.port, account.username, account.password), account.username
    remove_account(files, accounts[0].username)
    assert not mqtt.logs_in(server.host, server.port, accounts[0].username, accounts[0].password)
