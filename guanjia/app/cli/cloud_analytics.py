"""``guanjia cloud analytics``: train and score the equipment anomaly detectors, replay the demo story.

- ``train``    fit per-device baselines on the hourly rollups of a window; store a model version;
- ``score``    raise detections (→ fleet alarms → planned work orders) and refresh health records;
- ``models``   list stored model versions; ``activate`` rolls back / forward to a version;
- ``replay-demo`` weeks of a wearing pump (simulator physics) through train → score → work order.

The labelled evaluation on simulated fleets is not a product command: ``python -m bench
analytics-eval`` (benchmarks and evaluation fleets are not in the product wheel).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import typer
from rich.console import Console

from guanjia.app.cli import options
from guanjia.app.cli.options import DbOption
from guanjia.core.clock import SystemClock

app = typer.Typer(help="analytics: anomaly detection and equipment health.", no_args_is_help=True)
out = Console(soft_wrap=True)  # explanations are sentences: never hard-wrap them


def _url(value: str | None) -> str:
    return options.database_url(value)


def _when(text: str | None, default: dt.datetime | None = None) -> dt.datetime:
    """An ISO time from the command line (naive = UTC); without one, ``default`` or the system clock.

    This is where wall time enters the analytics commands: the jobs themselves only ever get
    explicit instants, so ``--now`` replays and re-scores any moment reproducibly.
    """
    if text is None:
        return default if default is not None else SystemClock().now()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time (e.g. 2027-01-01T00:30:00+08:00) / "
                                 "不是 ISO 8601 时间") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _policy() -> Any:
    """The work-order policy of ``GUANJIA_WO_POLICY`` (the shipped one when unset) — the same file
    ``guanjia cloud serve`` loads, so orders opened from the command line get the same SLA clocks.
    (Read directly: :class:`guanjia.core.settings.Settings` would demand a secret key these commands
    never use.)"""
    import os

    from cloud.ops.model.policy import load_policy

    return load_policy(os.environ.get("GUANJIA_WO_POLICY") or None)


async def _with_conn(url: str, job: Any) -> Any:
    import psycopg

    from cloud.db.pool import conninfo
    from cloud.runtime.errors import StorageError

    try:
        conn = await psycopg.AsyncConnection.connect(conninfo(url, "guanjia-analytics"))
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to the database: {exc}") from exc
    async with conn:
        return await job(conn)


@app.command()
def train(
    database_url: str | None = DbOption,
    start: str | None = typer.Option(None, help="Training window start (ISO time; default: end - 14 days)."),
    end: str | None = typer.Option(None, "--end", "--now", help="Training window end (ISO time; default: now)."),
    kind: list[str] = typer.Option([], "--kind", help="Only these device kinds (repeatable)."),
    community: str | None = typer.Option(None, help="Only this community."),
) -> None:
    """Fit every device's baseline on its rollups and store a new model version per kind."""
    from cloud.analytics.jobs import train as run_train

    stop = _when(end)
    begin = _when(start, stop - dt.timedelta(days=14))
    models = asyncio.run(_with_conn(_url(database_url), lambda c: run_train(c, begin, stop, kinds=kind or None,
                                                                              community=community)))
    if not models:
        out.print("no model trained (no device with enough history in the window)")
    for kind_name, model in models.items():
        out.print(f"{kind_name}: {model.detector} v{model.version} — {model.metrics.get('devices')} baselines, "
                  f"{model.metrics.get('skipped')} skipped", markup=False)


@app.command()
def score(
    database_url: str | None = DbOption,
    now: str | None = typer.Option(None, "--now", "--at", help="Score up to this time (ISO; default: now)."),
    since: str | None = typer.Option(None, help="Raise detections confirmed since (default: now - 2 h)."),
    community: str | None = typer.Option(None, help="Only this community."),
    alarms: bool = typer.Option(True, help="Raise fleet alarms / planned work orders for new detections."),
) -> None:
    """Score the recent hours: new detections become alarms; health records are refreshed."""
    from cloud.analytics.jobs import score as run_score

    moment = _when(now)
    begin = _when(since, moment - dt.timedelta(hours=2))
    result = asyncio.run(_with_conn(_url(database_url), lambda c: run_score(
        c, moment, since=begin, community=community, raise_alarms=alarms, policy=_policy())))
    out.print(f"scored {result.devices} devices: {len(result.detections)} new detections, "
              f"{result.alarms_raised} alarms raised, {result.cleared} cleared, "
              f"{result.health_updated} health records", markup=False)
    for det in result.detections:
        out.print(f"  {det.device} [{det.fault}] {det.message}", markup=False)


@app.command()
def models(database_url: str | None = DbOption, detector: str | None = typer.Option(None)) -> None:
    """List stored model versions (active marked with *)."""
    from cloud.analytics.modelstore import list_models

    rows = asyncio.run(_with_conn(_url(database_url), lambda c: list_models(c, detector)))
    for m in rows:
        window = f"{m.window_start:%Y-%m-%d}..{m.window_end:%Y-%m-%d}" if m.window_start and m.window_end else "-"
        out.print(f"{'*' if m.active else ' '} {m.detector} v{m.version} {m.trained_at:%Y-%m-%d %H:%M} "
                  f"window {window} devices={m.metrics.get('devices')} source={m.source}", markup=False)


@app.command()
def activate(detector: str, version: int, database_url: str | None = DbOption) -> None:
    """Make a stored version the active one."""
    from cloud.analytics.modelstore import activate as run_activate

    async def job(conn: Any) -> None:
        await run_activate(conn, detector, version)
        await conn.commit()

    asyncio.run(_with_conn(_url(database_url), job))
    out.print(f"{detector} v{version} is active", markup=False)


@app.command("replay-demo")
def replay_demo(
    database_url: str | None = DbOption,
    community: str = typer.Option("demo"),
    building: str = typer.Option("b1"),
    device: str = typer.Option("b1-pump-1"),
    days: int = typer.Option(28, min=20, help="Simulated days replayed, ending at the current hour."),
    wear_start_day: int = typer.Option(16, min=15),
    percent_per_day: float = typer.Option(8.0, min=1.0),
    now: str | None = typer.Option(None, "--now", help="The replay ends at this hour (ISO time; default: now)."),
) -> None:
    """Replay weeks of a pump wearing out (simulator physics) through train → score → planned work order."""
    from guanjia.app.demo_replay import replay_bearing_wear

    result = asyncio.run(_with_conn(_url(database_url), lambda c: replay_bearing_wear(
        c, community=community, building=building, device=device, days=days, wear_start_day=wear_start_day,
        percent_per_day=percent_per_day, now=_when(now), policy=_policy())))
    out.print(f"bearing wear began {result.wear_start:%Y-%m-%d %H:%M} UTC on {community}/{device}", markup=False)
    if result.detected_at is None:
        out.print("not detected", markup=False)
        raise typer.Exit(1)
    out.print(f"detected {result.detected_at:%Y-%m-%d %H:%M}: {result.message}", markup=False)
    if result.work_order:
        wo = result.work_order
        title = f"{wo['title_zh']} / {wo['title']}" if wo.get("title_zh") else wo["title"]  # the banner is zh / en
        out.print(f"work order #{wo['id']} {wo['priority']} ({wo['state']}): {title}", markup=False)
    if result.overload_at is not None and result.lead_days is not None:
        out.print(f"the motor overload would trip at {result.overload_at:%Y-%m-%d %H:%M}: "
                  f"{result.lead_days:.1f} simulated days after the planned work order", markup=False)
