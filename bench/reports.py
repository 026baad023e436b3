"""``reports`` benchmark: the monthly manager report of every community of a large estate.

Setup (not measured): a private PostgreSQL in a temp directory, the migrations, a synthetic
estate (:mod:`bench.webdata`: 200 communities × 50 devices = 10,000 devices, 30 days of hourly
rollups generated inside PostgreSQL, work orders per community), pinned to 2027-01-31 so the
month January 2027 (Asia/Shanghai) is covered by the data.

Measured: :func:`cloud.ops.reports.manager.build` for January of every community, one after the
other on one connection (work orders, SLA, maintenance, inspections, energy with time-of-use
cost), then the PDF of one of them; and the process's peak RSS. ``--quick``: 20 communities.

Keys (targets in ``shared/targets.json``): ``communities``, ``devices``, ``monthly_report_s``
(all communities), ``report_p50_ms`` / ``report_max_ms`` (one community), ``pdf_ms``,
``peak_rss_mb``, ``energy_rows`` (meters reported, a sanity check).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

NOW = dt.datetime(2027, 2, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 on 1 Feb in Shanghai: January is over


async def _run(url: str, communities: int, per: int) -> dict[str, Any]:
    from bench.webdata import build_world
    from cloud.db.pool import open_pool
    from cloud.ops.reports import pdf
    from cloud.ops.reports.company import combine
    from cloud.ops.reports.manager import build
    from cloud.ops.reports.tariffs import shipped

    codes = [f"r{i:03d}" for i in range(communities)]
    async with open_pool(url, min_size=1, max_size=2) as pool:
        async with pool.connection() as conn:
            await build_world(conn, codes, devices_per_community=per, buildings_per_community=5, days=31,
                              minute_days=0, work_orders_per_community=20, now=NOW)
            await conn.commit()
            await conn.set_autocommit(True)
            # what autovacuum does in a running system: statistics, and the visibility map that
            # lets the rollup be read index-only (migration 412)
            await conn.execute("VACUUM ANALYZE")
            await conn.set_autocommit(False)
            cur = await conn.execute("SELECT count(*) FROM devices")
            devices = int((await cur.fetchone() or (0,))[0])
        tariff = shipped()
        samples: list[float] = []
        energy_rows = 0
        last: dict[str, Any] = {}
        reports: list[dict[str, Any]] = []
        started = time.perf_counter()
        async with pool.connection() as conn:
            for code in codes:
                t0 = time.perf_counter()
                last = await build(conn, code, "month", dt.date(2027, 1, 15), tariff, NOW)
                samples.append((time.perf_counter() - t0) * 1000)
                energy_rows += len(last["energy"])
                reports.append(last)
            company = combine(reports, NOW)  # the company report: the communities' rows and totals
        total = time.perf_counter() - started
        t0 = time.perf_counter()
        pdf.render(last)
        pdf_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        pdf.render(company)
        company_pdf_ms = (time.perf_counter() - t0) * 1000
    return {"communities": communities, "devices": devices, "monthly_report_s": round(total, 2),
            "report_p50_ms": round(statistics.median(samples), 1), "report_max_ms": round(max(samples), 1),
            "pdf_ms": round(pdf_ms, 1), "company_pdf_ms": round(company_pdf_ms, 1), "energy_rows": energy_rows,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def run(quick: bool = False) -> dict[str, Any]:
    from cloud.db.migrate import migrate
    from guanjia.app.stack import PostgresServer

    directory = Path(tempfile.mkdtemp(prefix="guanjia-bench-reports-"))
    directory.chmod(0o755)
    server = PostgresServer(directory / "pg")
    server.start()
    try:
        migrate(server.dsn, prefer_timescale=False)
        return asyncio.run(_run(server.dsn, communities=20 if quick else 200, per=50))
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
