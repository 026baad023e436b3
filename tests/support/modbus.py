"""A pymodbus client that reads points by profile (simulator tests)."""

from __future__ import annotations

from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from device_profiles import Point, find_profile
from device_profiles.codec import decode


class PointReader:
    """Reads profile points with a real pymodbus client (one point per request, like a careful master)."""

    def __init__(self, client: AsyncModbusTcpClient) -> None:
        self.client = client

    async def read(self, unit: int, point: Point) -> Any:
        count = point.register_count
        if point.table == "input_register":
            rr = await self.client.read_input_registers(point.address, count=count, device_id=unit)
        elif point.table == "holding_register":
            rr = await self.client.read_holding_registers(point.address, count=count, device_id=unit)
        elif point.table == "coil":
            rr = await self.client.read_coils(point.address, count=1, device_id=unit)
            assert not rr.isError(), rr
            return decode(point, [int(rr.bits[0])])
        else:
            rr = await self.client.read_discrete_inputs(point.address, count=1, device_id=unit)
            assert not rr.isError(), rr
            return decode(point, [int(rr.bits[0])])
        assert not rr.isError(), rr
        return decode(point, rr.registers)

    async def values(self, unit: int, profile_id: str, *names: str) -> dict[str, Any]:
        profile = find_profile(profile_id)
        return {name: await self.read(unit, profile.point(name)) for name in names}
