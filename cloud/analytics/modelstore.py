"""Versioned models in PostgreSQL, as JSON — a safe format by construction.

A model version is a row of ``analytics_models`` (detector, version, params, training window,
metrics, source) with at most one *active* version per detector (a partial unique index, so two
trainers racing cannot both activate). Per-device baselines fitted for a version live in
``analytics_baselines``. Everything is JSON: coefficients, scalers, seasonal tables, limits. No
pickle, no joblib, no code paths that execute stored bytes — a stolen database write cannot
become code execution in the scoring job, and a model can be read and audited with ``psql``.
Non-finite floats (NaN/inf, which JSON cannot carry) are stored as ``null``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from cloud.analytics.errors import ModelFormatError

FORMAT = "json-v1"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    id: int
    detector: str
    kind: str
    version: int
    format: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    source: str
    active: bool
    trained_at: dt.datetime


def to_json_safe(value: Any) -> Any:
    """Deep copy with NaN/inf → None and numpy scalars → Python numbers; refuses anything else."""
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return to_json_safe(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raise ModelFormatError(f"a model parameter of type {type(value).__name__} cannot be stored as JSON")


_COLUMNS = "id, detector, kind, version, format, params, metrics, window_start, window_end, source, active, trained_at"


def _row(row: tuple[Any, ...]) -> ModelVersion:
    values = list(row)
    values[5] = restore_nan(dict(values[5]))
    return ModelVersion(*values)


async def save_model(
    conn: AsyncConnection[Any],
    *,
    detector: str,
    kind: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    window: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
    source: str = "",
    activate: bool = True,
) -> ModelVersion:
    """Store a new version (``max(version) + 1`` for the detector); activating retires the previous one.

    Runs in the caller's transaction when there is one (the version number is taken under a
    transaction-scoped advisory lock per detector so concurrent trainers get distinct numbers).
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('guanjia.analytics.' || %s))", (detector,))
        cur = await conn.execute("SELECT coalesce(max(version), 0) + 1 FROM analytics_models WHERE detector = %s",
                                 (detector,))
        row = await cur.fetchone()
        version = int(row[0]) if row else 1
        if activate:
            await conn.execute("UPDATE analytics_models SET active = false WHERE detector = %s AND active",
                               (detector,))
        cur = await conn.execute(
            f"""INSERT INTO analytics_models (detector, kind, version, format, params, metrics, window_start,
                                              window_end, source, active)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",
            (detector, kind, version, FORMAT, Jsonb(to_json_safe(params)), Jsonb(to_json_safe(metrics or {})),
             window[0], window[1], source, activate),
        )
        saved = await cur.fetchone()
    assert saved is not None
    return _row(saved)


async def load_model(conn: AsyncConnection[Any], detector: str, version: int | None = None) -> ModelVersion | None:
    """The active version of ``detector`` (or the given version), or None."""
    if version is None:
        cur = await conn.execute(f"SELECT {_COLUMNS} FROM analytics_models WHERE detector = %s AND active",
                                 (detector,))
    else:
        cur = await conn.execute(f"SELECT {_COLUMNS} FROM analytics_models WHERE detector = %s AND version = %s",
                                 (detector, version))
    row = await cur.fetchone()
    if row is None:
        return None
    model = _row(row)
    if model.format != FORMAT:
        raise ModelFormatError(
            f"{detector} v{model.version} is stored as {model.format!r}; this build reads {FORMAT!r}")
    return model


async def list_models(conn: AsyncConnection[Any], detector: str | None = None) -> list[ModelVersion]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM analytics_models WHERE %(d)s::text IS NULL OR detector = %(d)s "
        "ORDER BY detector, version", {"d": detector})
    return [_row(r) for r in await cur.fetchall()]


async def activate(conn: AsyncConnection[Any], detector: str, version: int) -> None:
    """Make ``version`` the active one (roll back to an older model, for instance)."""
    async with conn.transaction():
        cur = await conn.execute("SELECT 1 FROM analytics_models WHERE detector = %s AND version = %s",
                                 (detector, version))
        if await cur.fetchone() is None:
            raise ModelFormatError(f"{detector} has no version {version}")
        await conn.execute("UPDATE analytics_models SET active = false WHERE detector = %s AND active", (detector,))
        await conn.execute("UPDATE analytics_models SET active = true WHERE detector = %s AND version = %s",
                           (detector, version))


async def save_baseline(
    conn: AsyncConnection[Any],
    model_id: int,
    device_id: int,
    params: Mapping[str, Any],
    window: tuple[dt.datetime, dt.datetime],
    samples: int = 0,
) -> None:
    await conn.execute(
        """INSERT INTO analytics_baselines (model_id, device_id, params, window_start, window_end, samples)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (model_id, device_id) DO UPDATE
           SET params = EXCLUDED.params, window_start = EXCLUDED.window_start,
               window_end = EXCLUDED.window_end, samples = EXCLUDED.samples, trained_at = now()""",
        (model_id, device_id, Jsonb(to_json_safe(params)), window[0], window[1], samples),
    )


async def load_baselines(conn: AsyncConnection[Any], model_id: int) -> dict[int, dict[str, Any]]:
    cur = await conn.execute("SELECT device_id, params FROM analytics_baselines WHERE model_id = %s", (model_id,))
    return {int(r[0]): restore_nan(dict(r[1])) for r in await cur.fetchall()}


def restore_nan(value: Any) -> Any:
    """Inverse of the NaN → null mapping for numeric lists read back (None → NaN inside lists)."""
    if isinstance(value, list):
        return [float("nan") if v is None else restore_nan(v) for v in value]
    if isinstance(value, dict):
        return {k: restore_nan(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class Reference:
    """A device's healthy reference baseline (first healthy weeks, or the weeks after a repair)."""

    params: dict[str, Any]
    window_start: dt.datetime
    window_end: dt.datetime
    reason: str


async def load_reference(conn: AsyncConnection[Any], device_id: int, detector: str) -> Reference | None:
    cur = await conn.execute("SELECT params, window_start, window_end, reason FROM analytics_references "
                             "WHERE device_id = %s AND detector = %s", (device_id, detector))
    row = await cur.fetchone()
    if row is None:
        return None
    return Reference(restore_nan(dict(row[0])), row[1], row[2], str(row[3]))


async def save_reference(conn: AsyncConnection[Any], device_id: int, detector: str, params: Mapping[str, Any],
                         window: tuple[dt.datetime, dt.datetime], reason: str) -> None:
    await conn.execute(
        """INSERT INTO analytics_references (device_id, detector, params, window_start, window_end, reason)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (device_id, detector) DO UPDATE SET params = EXCLUDED.params,
               window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end, reason = EXCLUDED.reason""",
        (device_id, detector, Jsonb(to_json_safe(params)), window[0], window[1], reason))
