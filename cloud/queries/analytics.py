"""Read models of the analytics results: a device's scored health record and its anomaly detections.

The analytics jobs (:mod:`cloud.analytics`) write ``device_health`` and ``analytics_detections``;
these are the reads behind ``/api/v1/analytics/devices/{id}/…``. The rows are pydantic models
because they are the API's response schema as well: the router returns them as they are, and the
SQL lives here rather than in the router. The caller has already checked that the user may see
the device.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel

from guanjia.core.lang import split_bilingual


class Deduction(BaseModel):
    points: int
    reason: str


class HealthScore(BaseModel):
    """The equipment health record and its 0–100 score, as the analytics job stored it."""

    device_id: int
    device: str
    kind: str
    score: int
    window_start: dt.datetime
    window_end: dt.datetime
    updated_at: dt.datetime
    figures: dict[str, Any]
    deductions: list[Deduction]


class Detection(BaseModel):
    id: int
    detector: str
    fault: str
    onset_at: dt.datetime
    detected_at: dt.datetime
    last_seen_at: dt.datetime
    cleared_at: dt.datetime | None
    open: bool
    score: float
    message: str
    """The explanation in English (what moved, how far, since when, what to check)."""
    message_zh: str | None = None
    """The same in Chinese (the job writes one ``中文 / English`` text: :func:`guanjia.core.lang.split_bilingual`)."""
    evidence: dict[str, Any]
    alarm_id: int | None
    model_version: int | None


async def load_health_score(conn: AsyncConnection[Any], device_id: int, device_code: str) -> HealthScore | None:
    """The device's stored health record, or None before the analytics job has scored it."""
    cur = await conn.execute(
        "SELECT kind, score, window_start, window_end, updated_at, record, deductions "
        "FROM device_health WHERE device_id = %s", (device_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    return HealthScore(device_id=device_id, device=device_code, kind=row[0], score=row[1], window_start=row[2],
                       window_end=row[3], updated_at=row[4], figures=row[5],
                       deductions=[Deduction(**d) for d in row[6]])


async def load_detections(conn: AsyncConnection[Any], device_id: int, *, open_only: bool,
                          limit: int) -> list[Detection]:
    """The device's anomaly detections, newest first, with the version of the model that found them."""
    cur = await conn.execute(
        """SELECT d.id, d.detector, d.fault, d.onset_at, d.detected_at, d.last_seen_at, d.cleared_at, d.open,
                  d.score, d.message, d.evidence, d.alarm_id, m.version
             FROM analytics_detections d LEFT JOIN analytics_models m ON m.id = d.model_id
            WHERE d.device_id = %s AND (NOT %s OR d.open)
            ORDER BY d.detected_at DESC LIMIT %s""", (device_id, open_only, limit))
    out = []
    for r in await cur.fetchall():
        message, message_zh = split_bilingual(r[9])
        out.append(Detection(id=r[0], detector=r[1], fault=r[2], onset_at=r[3], detected_at=r[4], last_seen_at=r[5],
                             cleared_at=r[6], open=r[7], score=r[8], message=message, message_zh=message_zh,
                             evidence=r[10], alarm_id=r[11], model_version=r[12]))
    return out
