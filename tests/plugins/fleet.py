"""Fixtures of the remote-command tests (a ``pytest_plugins`` module): fresh community and gateway
codes, and a cloud process running only the ``command-dispatcher``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from cloud.ops.fleet.dispatcher import components as dispatcher
from cloud.runtime.context import CloudConfig
from cloud.service import CloudService
from guanjia.core.settings import Settings
from tests.support.services import BrokerHandle

SECRET = "test-secret-key-for-the-command-tests-0123456789"


@pytest.fixture
def gateway_names() -> tuple[str, str]:
    """A community and a gateway code of this test only."""
    return f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def command_cloud(fresh_db: str, broker: BrokerHandle) -> AsyncIterator[CloudService]:
    """A cloud process running only the command dispatcher, on the broker's admin account."""
    settings = Settings(mode="test", database_url=fresh_db, mqtt_url=broker.admin_url, secret_key=SECRET)
    config = CloudConfig.from_settings(settings, api=False, migrate=False, prefer_timescale=False)
    async with CloudService(settings, config, components=[dispatcher]) as service:
        yield service
