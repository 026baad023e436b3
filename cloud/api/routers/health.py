"""``/healthz`` (database and broker reachable) and ``/metrics`` (Prometheus text).

Unauthenticated on purpose: load balancers and Prometheus scrape them. They reveal nothing but
up/down and counters.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from psycopg_pool import PoolTimeout

from cloud.api.deps import MetricsDep, PoolDep
from cloud.queries.database import ping
from guanjia.core.settings import MqttUrl

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 2.0


async def _check_db(pool: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            async with pool.connection(timeout=CHECK_TIMEOUT_S) as conn:
                await ping(conn)
    except (TimeoutError, PoolTimeout, psycopg.Error) as exc:
        return {"ok": False, "error": str(exc)[:200] or type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


async def _check_broker(url: str | None) -> dict[str, Any]:
    if not url:
        return {"ok": True, "skipped": "GUANJIA_MQTT_URL not set"}
    target = MqttUrl.parse(url)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            _, writer = await asyncio.open_connection(target.host, target.port)
            writer.close()
            await writer.wait_closed()
    except (TimeoutError, OSError) as exc:
        return {"ok": False, "error": str(exc)[:200] or type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


@router.get("/healthz")
async def healthz(request: Request, pool: PoolDep) -> JSONResponse:
    settings = getattr(request.app.state, "settings", None)
    db, broker = await asyncio.gather(_check_db(pool), _check_broker(getattr(settings, "mqtt_url", None)))
    ok = bool(db["ok"] and broker["ok"])
    return JSONResponse({"status": "ok" if ok else "degraded", "database": db, "broker": broker},
                        status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(registry: MetricsDep) -> PlainTextResponse:
    return PlainTextResponse(registry.render(), media_type="text/plain; version=0.0.4")
