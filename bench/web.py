"""``web`` benchmark: dashboard and API server time with 1,000 devices and 30 days of history.

Setup (not measured): a private PostgreSQL in a temp directory, the migrations, a synthetic
estate (:mod:`bench.webdata`: 4 communities × 250 devices, 30 days of hourly rollups generated
inside PostgreSQL), an engineer and a butler with 60 open work orders.

Measured: the product's own FastAPI app driven in-process through httpx's ASGI transport (so the
time is the server's: routing, auth with a session cookie and a user lookup, the tenant-scoped
SQL, Jinja2 rendering — no network), sequentially, after a warm-up:

* ``overview`` — the fleet overview page ``GET /fleet`` of an engineer who sees all 1,000 devices
  (state of every device derived from last values, alarms and open work orders);
* ``chart_30d`` — ``GET /api/v1/devices/{id}/series?range=30d`` of a random device (hourly rollup);
* ``inbox`` — the butler inbox page ``GET /inbox`` (open orders by SLA deadline);
* ``device_page`` — the device page ``GET /devices/{id}`` of a random device: values worded from its
  profile, counter increases over 30 days of hourly rollups, health record, history and chart picker.

Keys: ``devices``, ``days``, and ``{overview,chart_30d,inbox,device_page}_{p50,p99}_ms``.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

COMMUNITIES = ("c01", "c02", "c03", "c04")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _measure(call: Callable[[], Awaitable[int]], n: int) -> list[float]:
    for _ in range(max(3, n // 10)):
        assert await call() == 200
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        status = await call()
        samples.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    return samples


async def _run(url: str, devices: int, days: int, n: int, run_dir: Path) -> dict[str, Any]:
    import httpx

    from bench.webdata import CHART_METRIC, build_world
    from cloud.app import create_app
    from cloud.auth.roles import Role
    from cloud.auth.users import create_user
    from cloud.db.pool import open_pool
    from guanjia.core.settings import Settings

    per = devices // len(COMMUNITIES)
    async with open_pool(url, min_size=2, max_size=8) as pool:
        async with pool.connection() as conn:
            engineer = await create_user(conn, "bench-engineer", "bench-engineer-pw", Role.engineer, COMMUNITIES)
            butler = await create_user(conn, "bench-butler", "bench-butler-pw", Role.butler, [COMMUNITIES[0]])
            world = await build_world(conn, list(COMMUNITIES), devices_per_community=per, buildings_per_community=10,
                                      days=days, minute_days=0, butler_users={COMMUNITIES[0]: [butler.id]},
                                      work_orders_per_community=120)
            await conn.commit()
            await conn.execute("ANALYZE")
            cur = await conn.execute("SELECT id, kind FROM devices")
            kinds = {int(r[0]): str(r[1]) for r in await cur.fetchall()}
        settings = Settings(mode="test", database_url=url, run_dir=run_dir, secret_key=secrets.token_urlsafe(32))
        app = create_app(settings, pool)
        transport = httpx.ASGITransport(app=app)
        results: dict[str, Any] = {"devices": len(kinds), "days": days}
        async with (httpx.AsyncClient(transport=transport, base_url="http://bench") as eng,
                    httpx.AsyncClient(transport=transport, base_url="http://bench") as but):
            for client, user, pw in ((eng, engineer, "bench-engineer-pw"), (but, butler, "bench-butler-pw")):
                resp = await client.post("/login", data={"username": user.username, "password": pw})
                assert resp.status_code == 303, resp.text
            rng = random.Random(7)
            ids = sorted(kinds)

            async def overview() -> int:
                return (await eng.get("/fleet")).status_code

            async def chart() -> int:
                device = rng.choice(ids)
                resp = await eng.get(f"/api/v1/devices/{device}/series",
                                     params={"metric": CHART_METRIC[kinds[device]], "range": "30d"})
                assert len(resp.json()["t"]) >= 24 * (days - 1)
                return resp.status_code

            async def inbox() -> int:
                return (await but.get("/inbox")).status_code

            async def device_page() -> int:
                return (await eng.get(f"/devices/{rng.choice(ids)}")).status_code

            for name, call in (("overview", overview), ("chart_30d", chart), ("inbox", inbox),
                               ("device_page", device_page)):
                samples = await _measure(call, n)
                results[f"{name}_p50_ms"] = round(statistics.median(samples), 2)
                results[f"{name}_p99_ms"] = round(_percentile(samples, 99), 2)
            results["inbox_orders"] = len(world.work_order_ids[COMMUNITIES[0]])
    return results


def run(quick: bool = False) -> dict[str, Any]:
    from cloud.db.migrate import migrate
    from guanjia.app.stack import PostgresServer

    directory = Path(tempfile.mkdtemp(prefix="guanjia-bench-web-"))
    directory.chmod(0o755)
    server = PostgresServer(directory / "pg")
    server.start()
    try:
        url = server.dsn
        migrate(url, prefer_timescale=False)
        return asyncio.run(_run(url, devices=1000, days=30, n=60 if quick else 300, run_dir=directory / "run"))
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
