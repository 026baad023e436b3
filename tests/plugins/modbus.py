"""``modbus_client`` (a ``pytest_plugins`` module): connect real pymodbus clients that read points
by profile (:class:`tests.support.modbus.PointReader`), closed after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from tests.support.modbus import PointReader


@pytest.fixture
async def modbus_client() -> AsyncIterator[Any]:
    clients: list[AsyncModbusTcpClient] = []

    async def connect(host: str, port: int) -> PointReader:
        client = AsyncModbusTcpClient(host, port=port, timeout=1.0, retries=0)
        assert await client.connect()
        clients.append(client)
        return PointReader(client)

    yield connect
    for client in clients:
        client.close()
