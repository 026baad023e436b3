"""Gateway health for the dashboard: online state, last seen, what the edge reports, ingest
bookkeeping (sequence high-water, gaps) and dead letters.

The edge's retained ``status`` message carries a free-form ``health`` object (outbox depth,
poll latency histograms, error counters …) that ingest stores in ``gateways.status``. Its exact
keys belong to the edge agent and may grow, so the page shows every key (flattened), and the
headline figures are picked by name: queue depth (``outbox``/``queue`` + ``depth``/``pending``),
poll latency (``request_time``/``latency`` p50/p99) and errors (keys ending in ``errors``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.auth.users import User, scope_params

_QUEUE = re.compile(r"(outbox|queue).*(depth|pending|size|rows|backlog)|(depth|pending|backlog)$")
_LATENCY = re.compile(r"(request_time|latency|poll).*(p50|p99)")
_ERRORS = re.compile(r"errors?$")


@dataclass(slots=True, frozen=True)
class GatewaySummary:
    """The few figures an engineer acts on (the gateway page's headline; the rest is "details").

    * ``uplink_lag_s``: how long since the cloud stored a batch from the gateway;
    * ``outbox_depth``: messages waiting in the edge's outbox (all streams);
    * ``lateness_p99_ms``: how late the polls start, 99th percentile (a busy or slow bus);
    * ``devices_offline``: devices the edge cannot reach;
    * ``errors_1h``: request, poll and publish errors of the last hour (the edge counts them);
    * agent and config version: what runs there (the config version is a digest of its config).
    """

    online: bool
    uplink_lag_s: float | None
    outbox_depth: int | None
    lateness_p99_ms: float | None
    devices_offline: int | None
    errors_1h: int | None
    agent_version: str | None
    config_version: str | None


def _number(flat: dict[str, Any], key: str) -> float | None:
    value = flat.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(slots=True)
class GatewayHealth:
    """One gateway as the dashboard sees it. Not the registry's row
    (:class:`cloud.registry.store.GatewayRow`: trust, auto-registration, broker account), which is
    the operator's view of the same table; the API's ``GatewayOut`` is a projection of this one."""

    id: int
    code: str
    name: str
    community: str
    online: bool
    last_seen: dt.datetime | None
    devices: int
    high_water: int | None
    gaps: int
    received: int
    last_received_at: dt.datetime | None
    dead_letters_24h: int
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def flat(self) -> dict[str, Any]:
        return flatten(self.status)

    @property
    def queue_depth(self) -> float | None:
        return _first(self.flat, _QUEUE)

    @property
    def poll_latency(self) -> dict[str, Any]:
        return {k: v for k, v in self.flat.items() if _LATENCY.search(k)}

    def summary(self, now: dt.datetime) -> GatewaySummary:
        flat = self.flat
        streams = [_number(flat, f"outbox.{k}_messages") for k in ("alarms", "events", "telemetry")]
        depth = sum(v for v in streams if v is not None) if any(v is not None for v in streams) else self.queue_depth
        offline, errors = _number(flat, "devices_offline"), _number(flat, "errors_1h")
        lag = (now - self.last_received_at).total_seconds() if self.last_received_at else None
        agent, config = flat.get("agent_version"), flat.get("config_version")
        return GatewaySummary(online=self.online, uplink_lag_s=max(0.0, lag) if lag is not None else None,
                              outbox_depth=int(depth) if depth is not None else None,
                              lateness_p99_ms=_number(flat, "poll.lateness.p99_ms"),
                              devices_offline=int(offline) if offline is not None else None,
                              errors_1h=int(errors) if errors is not None else None,
                              agent_version=str(agent) if agent is not None else None,
                              config_version=str(config) if config is not None else None)

    @property
    def errors(self) -> int:
        return int(sum(v for k, v in self.flat.items() if _ERRORS.search(k) and isinstance(v, int | float)))


def flatten(doc: Any, prefix: str = "", out: dict[str, Any] | None = None, depth: int = 0) -> dict[str, Any]:
    out = {} if out is None else out
    if isinstance(doc, dict) and depth < 6:
        for key, value in doc.items():
            flatten(value, f"{prefix}.{key}" if prefix else str(key), out, depth + 1)
    elif not isinstance(doc, list | dict):
        out[prefix or "value"] = doc
    return out


def _first(flat: dict[str, Any], pattern: re.Pattern[str]) -> float | None:
    for key, value in flat.items():
        if pattern.search(key) and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


_SQL = """
SELECT g.id, g.code, g.name, c.code AS community, g.online, g.last_seen, g.status,
       (SELECT count(*) FROM devices d WHERE d.gateway_id = g.id) AS devices,
       s.high_water, coalesce(s.gaps, 0) AS gaps, coalesce(s.received, 0) AS received, s.last_received_at,
       (SELECT count(*) FROM dead_letters x WHERE x.gateway_id = g.id
           AND x.received_at > now() - interval '24 hours') AS dead_letters_24h
  FROM gateways g
  JOIN communities c ON c.id = g.community_id
  LEFT JOIN gateway_sequence s ON s.gateway_id = g.id
 WHERE (%(all)s OR c.code = ANY(%(communities)s)) AND (%(id)s::int IS NULL OR g.id = %(id)s)
   AND (%(community)s::text IS NULL OR c.code = %(community)s)
 ORDER BY c.code, g.code
"""


def _row(r: dict[str, Any]) -> GatewayHealth:
    status = r["status"] if isinstance(r["status"], dict) else {}
    return GatewayHealth(id=r["id"], code=r["code"], name=r["name"], community=r["community"], online=r["online"],
                      last_seen=r["last_seen"], devices=r["devices"], high_water=r["high_water"], gaps=r["gaps"],
                      received=r["received"], last_received_at=r["last_received_at"],
                      dead_letters_24h=r["dead_letters_24h"], status=status)


_INCARNATIONS = """
SELECT i.incarnation, i.first_seen_at, i.first_seq, s.high_water, coalesce(s.received, 0) AS received,
       coalesce(s.gaps, 0) AS gaps, s.last_received_at,
       (SELECT count(*) FROM ingest_quarantine q WHERE q.gateway_id = i.gateway_id
           AND q.incarnation = i.incarnation) AS quarantined
  FROM gateway_incarnations i
  LEFT JOIN gateway_incarnation_sequence s ON s.gateway_id = i.gateway_id AND s.incarnation = i.incarnation
 WHERE i.gateway_id = %s
 ORDER BY i.first_seen_at DESC
 LIMIT 50
"""


async def load_incarnations(conn: AsyncConnection[Any], gateway_id: int) -> list[dict[str, Any]]:
    """The gateway's outbox incarnations, newest first: a wiped or replaced outbox is an event in
    its history, each with its own high-water mark, gaps and quarantined messages (docs/wire.md).
    The caller has already checked the user may see the gateway (:func:`load_gateways`)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_INCARNATIONS, (gateway_id,))
        return await cur.fetchall()


async def load_gateways(conn: AsyncConnection[Any], user: User, community: str | None = None,
                        gateway_id: int | None = None) -> list[GatewayHealth]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SQL, {**scope_params(user), "id": gateway_id, "community": community})
        return [_row(r) for r in await cur.fetchall()]
