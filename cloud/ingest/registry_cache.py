"""Id lookups of the ingest hot path: gateways, devices, metrics, cached in the worker.

Why a cache: a batch names hundreds of devices; asking the database for each would cost more
than the COPY. Positive answers are kept (ids never change); negative answers expire after
``negative_ttl`` so a gateway or device added with the CLI is picked up within seconds.
Unknown devices are created here when the gateway is trusted and its policy is ``register``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import psycopg
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

MAX_METRICS = 30_000
"""The metric dictionary is a smallint; a hostile gateway inventing names stops here."""


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    id: int
    community_id: int
    community: str
    code: str
    trusted: bool
    auto_register: bool


@dataclass(slots=True)
class RegistryCache:
    pool: AsyncConnectionPool
    negative_ttl: float = 10.0
    gateways: dict[tuple[str, str], GatewayInfo] = field(default_factory=dict)
    _gw_missing: dict[tuple[str, str], float] = field(default_factory=dict)
    devices: dict[tuple[int, str], tuple[int, int | None]] = field(default_factory=dict)
    _dev_missing: dict[tuple[int, str], float] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)
    auto_registered: int = 0
    _allowed: dict[int, dict[str, int]] = field(default_factory=dict)
    """Per gateway: every device code it may report for → id (the hot path's one set test)."""

    async def gateway(self, community: str, gateway: str) -> GatewayInfo | None:
        key = (community, gateway)
        if (info := self.gateways.get(key)) is not None:
            return info
        if self._gw_missing.get(key, 0.0) > time.monotonic():
            return None
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT g.id, g.community_id, g.trusted, g.auto_register FROM gateways g "
                "JOIN communities c ON c.id = g.community_id WHERE c.code = %s AND g.code = %s",
                (community, gateway),
            )
            row = await cur.fetchone()
        if row is None:
            self._gw_missing[key] = time.monotonic() + self.negative_ttl
            return None
        info = GatewayInfo(int(row[0]), int(row[1]), community, gateway, bool(row[2]), row[3] == "register")
        self.gateways[key] = info
        return info

    def forget_gateway(self, community: str, gateway: str) -> None:
        self.gateways.pop((community, gateway), None)

    async def device_ids(self, gw: GatewayInfo, codes: set[str]) -> dict[str, int]:
        """Ids of the devices this gateway may report for; unknown ones are absent from the result.

        The result may hold more devices than asked for (the gateway's known set).
        """
        allowed = self._allowed.setdefault(gw.id, {})
        if codes <= allowed.keys():
            return allowed
        out: dict[str, int] = {}
        missing: list[str] = []
        now = time.monotonic()
        for code in codes:
            hit = self.devices.get((gw.community_id, code))
            if hit is not None:
                if hit[1] is None or hit[1] == gw.id:
                    out[code] = allowed[code] = hit[0]
            elif self._dev_missing.get((gw.community_id, code), 0.0) <= now:
                missing.append(code)
        if not missing:
            return out
        async with self.pool.connection() as conn:
            found = await self._select(conn, gw.community_id, missing)
            absent = [c for c in missing if c not in found]
            if absent and gw.trusted and gw.auto_register:
                await conn.execute(
                    "INSERT INTO devices (community_id, gateway_id, code, auto_registered) "
                    "SELECT %s, %s, code, true FROM unnest(%s::text[]) AS code ON CONFLICT DO NOTHING",
                    (gw.community_id, gw.id, absent),
                )
                await conn.commit()
                self.auto_registered += len(absent)
                log.info("auto-registered %d devices for gateway %s/%s", len(absent), gw.community, gw.code)
                found.update(await self._select(conn, gw.community_id, absent))
        for code in missing:
            if code in found:
                self.devices[(gw.community_id, code)] = found[code]
                if found[code][1] is None or found[code][1] == gw.id:
                    out[code] = allowed[code] = found[code][0]
            else:
                self._dev_missing[(gw.community_id, code)] = now + self.negative_ttl
        return out

    @staticmethod
    async def _select(conn: psycopg.AsyncConnection, community_id: int,
                      codes: list[str]) -> dict[str, tuple[int, int | None]]:
        cur = await conn.execute(
            "SELECT code, id, gateway_id FROM devices WHERE community_id = %s AND code = ANY(%s)",
            (community_id, codes),
        )
        rows = await cur.fetchall()
        await conn.commit()
        return {str(code): (int(i), None if g is None else int(g)) for code, i, g in rows}

    async def metric_ids(self, names: set[str]) -> dict[str, int]:
        missing = [n for n in names if n not in self.metrics]
        if missing:
            async with self.pool.connection() as conn:
                cur = await conn.execute("SELECT count(*) FROM metrics")
                row = await cur.fetchone()
                if row is not None and int(row[0]) + len(missing) <= MAX_METRICS:
                    await conn.execute(
                        "INSERT INTO metrics (name) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (missing,))
                cur = await conn.execute("SELECT name, id FROM metrics WHERE name = ANY(%s)", (missing,))
                self.metrics.update({str(n): int(i) for n, i in await cur.fetchall()})
                await conn.commit()
        return {n: self.metrics[n] for n in names if n in self.metrics}
