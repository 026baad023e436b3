"""A Mosquitto of a test's own (a ``pytest_plugins`` module), for the tests that edit the broker's
password and ACL files by hand, as production provisioning does (``cloud.registry.provisioning``):
the session's broker keeps its accounts in the local stack's ``accounts.json`` and would rewrite them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from cloud.registry.broker import BrokerAccount
from guanjia.app.stack.mosquitto import MosquittoServer
from tests.support.services import service_dir


@pytest.fixture
def own_broker() -> Iterator[MosquittoServer]:
    """Started with one admin account, stopped and removed after the test."""
    directory = service_dir("guanjia-mq-own-")
    server = MosquittoServer(directory / "mq")
    server.set_accounts([BrokerAccount("admin", "admin-password-0123", [("readwrite", "#")])])
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
