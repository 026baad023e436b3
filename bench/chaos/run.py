"""Run the scenarios against one loopback stack and reconcile each exactly."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.chaos.counter import Counter
from bench.chaos.expect import compare_alarm_states, wait_for_tickets
from bench.chaos.harness import Site, Stack
from bench.chaos.reconcile import reconcile
from bench.chaos.scenarios import SCENARIOS, DeviceFault, Scenario, Timing
from guanjia.app.stack.local import ADMIN_USER
from guanjia.core.errors import GuanjiaError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Outcome:
    name: str
    lost: int = 0
    duplicated: int = 0
    expected: int = 0
    stored_points: int = 0
    pending: int = 0
    reported_lost: int = 0
    alarms: str = "-"
    alarm_ok: bool | None = None
    work_orders: dict[str, int] = field(default_factory=dict)
    expected_work_orders: dict[str, int] = field(default_factory=dict)
    spurious_work_orders: int = 0
    missing_work_orders: int = 0
    notifications: int = 0
    spurious_notifications: int = 0
    ghost_alarms: list[tuple[str, str]] = field(default_factory=list)
    unseen_alarms: list[tuple[str, str]] = field(default_factory=list)
    in_flight_alarms: list[tuple[str, str]] = field(default_factory=list)
    """Alarms whose last event was still in the agent's outbox when it stopped (not a mismatch)."""
    ok: bool = True
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def _check_alarm(stack: Stack, site: Site, fault: DeviceFault, timeout: float = 30.0) -> tuple[bool, str]:
    """Exactly one alarm row for (community, device, rule); its work orders are counted with the
    scenario's others (:mod:`bench.chaos.expect`)."""
    device = site.device(fault.kind)["id"]
    deadline = time.monotonic() + timeout
    rows: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        rows = stack.sql("SELECT id FROM alarms WHERE community = %s AND device = %s AND rule = %s",
                         site.community, device, fault.rule)
        if rows:
            break
        time.sleep(0.5)
    time.sleep(2.0)  # let redeliveries, if any, arrive
    rows = stack.sql("SELECT id FROM alarms WHERE community = %s AND device = %s AND rule = %s",
                     site.community, device, fault.rule)
    orders = stack.sql("SELECT count(*) FROM work_orders WHERE alarm_id = ANY(%s)", [r[0] for r in rows])
    n_orders = int(orders[0][0])
    return len(rows) == 1, f"{len(rows)} alarm / {n_orders} WO"


def run_scenario(stack: Stack, counter: Counter, scenario: Scenario, quick: bool) -> Outcome:
    out = Outcome(scenario.name)
    started = time.monotonic()
    _heal(stack)  # a scenario that failed mid-fault may have left the broker or the database down
    site = Site(stack, scenario.name, devices=scenario.devices, sim_args=scenario.sim_args,
                report_by_exception=scenario.rbe)
    try:
        site.start(use_proxy=scenario.proxy)
        out.extra = scenario.action(site, stack, Timing.of(quick))
        _heal(stack)
        stopping = datetime.now(UTC)  # incidents from here on are the site's shutdown, not the scenario's
        site.finish()
        if scenario.fault is not None:
            ok, out.alarms = _check_alarm(stack, site, scenario.fault)
            out.alarm_ok = ok
            out.ok &= ok
        _check_tickets(stack, site, scenario, stopping, out)
        # the cloud may still be writing what the agent published last, and its confirmation of the
        # last batches may still be on its way to the outbox (retried until acknowledged): wait for
        # both, with a deadline, rather than judge one instant
        deadline = time.monotonic() + 60
        while True:
            rec = reconcile(stack.database_url, site.community, site.gateway, site.outbox,
                            counter.for_gateway(site.community, site.gateway))
            if (rec.lost_messages == 0 and rec.pending_messages == 0) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        out.lost, out.duplicated = rec.lost, rec.duplicated
        out.expected, out.stored_points = rec.expected_messages, rec.stored_points
        out.pending, out.reported_lost = rec.pending_messages, rec.reported_lost_messages
        if rec.lost_seqs:
            out.extra["lost_seqs"] = rec.lost_seqs[:10]
        out.ok &= rec.lost == 0 and rec.duplicated == 0 and out.extra.get("ok", True) is not False
    except Exception as exc:  # a broken scenario is a result, not the end of the suite
        log.exception("scenario %s failed", scenario.name)
        out.ok, out.error = False, f"{type(exc).__name__}: {exc}"[:300]
        _heal(stack)
        site.finish(drain_timeout=5)
    finally:
        out.seconds = round(time.monotonic() - started, 1)
    return out


def _heal(stack: Stack) -> None:
    if not stack.postgres.running():
        stack.postgres.start()
    if not stack.broker.running():
        stack.broker.start()
    stack.ensure_cloud()


def _check_tickets(stack: Stack, site: Site, scenario: Scenario, stopping: datetime, out: Outcome) -> None:
    """Exactly the declared work orders; no notification about anything else; no ghost alarm."""
    expected = dict(scenario.work_orders)
    tickets = wait_for_tickets(stack, site.community, stopping, expected)
    out.work_orders, out.expected_work_orders = tickets.work_orders, expected
    out.spurious_work_orders, out.missing_work_orders = tickets.spurious(expected), tickets.missing(expected)
    out.notifications = sum(tickets.notifications.values())
    out.spurious_notifications = tickets.spurious_notifications(expected)
    states = compare_alarm_states(stack, site.community, site.directory / "rules-state.json", site.outbox)
    out.ghost_alarms, out.unseen_alarms, out.in_flight_alarms = states.ghosts, states.unseen, states.in_flight
    out.ok &= out.spurious_work_orders == 0 and out.missing_work_orders == 0 and out.spurious_notifications == 0
    if out.missing_work_orders:  # the first thing to look at (issue 24): held under a gateway episode?
        rows = stack.sql(
            "SELECT count(*) FILTER (WHERE a.inhibited), (SELECT max(s.changed_at)::text FROM gateway_sessions s"
            " WHERE s.community = %s) FROM alarms a WHERE a.community = %s", site.community, site.community)
        out.extra["inhibited_alarms"], out.extra["reconnect_dated_at"] = int(rows[0][0]), str(rows[0][1])
    if scenario.alarm_state:
        out.ok &= states.mismatches == 0


def run_scenarios(names: list[str] | None, quick: bool, root: Path | None = None) -> list[Outcome]:
    known = {s.name for s in SCENARIOS}
    unknown = sorted(set(names or ()) - known)
    if unknown:
        raise GuanjiaError(f"unknown chaos scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    chosen = [s for s in SCENARIOS if names is None or s.name in names]
    own_root = root is None
    root = root or Path(tempfile.mkdtemp(prefix="guanjia-chaos-"))
    stack = Stack(root).up()
    admin = stack.local.account(ADMIN_USER)
    assert admin is not None
    counter = Counter(stack.broker.url_for(admin), client_id=f"chaos-counter-{os.getpid()}")
    outcomes: list[Outcome] = []
    try:
        stack.start_cloud("cloud")
        for scenario in chosen:
            log.info("chaos scenario %s", scenario.name)
            outcomes.append(run_scenario(stack, counter, scenario, quick))
    finally:
        counter.close()
        stack.down()
        if own_root and not os.environ.get("GUANJIA_BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
    return outcomes


def table(outcomes: list[Outcome]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="guanjia chaos: exact reconciliation per scenario")
    for col in ("scenario", "messages", "points stored", "lost", "duplicated", "reported lost", "alarm",
                "work orders (expected)", "spurious", "ghosts", "s", "result", "notes"):
        t.add_column(col)
    for o in outcomes:
        notes = o.error or ", ".join(f"{k}={v}" for k, v in o.extra.items() if k != "ok")
        t.add_row(o.name, str(o.expected), str(o.stored_points), str(o.lost), str(o.duplicated),
                  str(o.reported_lost), o.alarms,
                  f"{sum(o.work_orders.values())} ({sum(o.expected_work_orders.values())})",
                  f"{o.spurious_work_orders} WO / {o.spurious_notifications} notif",
                  str(len(o.ghost_alarms)), str(o.seconds), "[green]ok[/]" if o.ok else "[red]FAIL[/]", notes[:80])
    Console(stderr=True, width=200).print(t)


def run(quick: bool = False, only: list[str] | None = None) -> dict[str, Any]:
    """The suite (or the scenarios named in ``only``), as flat figures for bench/results/chaos.json."""
    outcomes = run_scenarios(only or None, quick)
    table(outcomes)
    result: dict[str, Any] = {
        "scenarios": len(outcomes),
        "lost": sum(o.lost for o in outcomes),
        "duplicated": sum(o.duplicated for o in outcomes),
        "failed": sum(not o.ok for o in outcomes),
        "failed_scenarios": ",".join(o.name for o in outcomes if not o.ok),
        "alarm_checks": sum(o.alarm_ok is not None for o in outcomes),
        "alarm_checks_failed": sum(o.alarm_ok is False for o in outcomes),
        "work_orders": sum(sum(o.work_orders.values()) for o in outcomes),
        "expected_work_orders": sum(sum(o.expected_work_orders.values()) for o in outcomes),
        "spurious_work_orders": sum(o.spurious_work_orders for o in outcomes),
        "missing_work_orders": sum(o.missing_work_orders for o in outcomes),
        "notifications": sum(o.notifications for o in outcomes),
        "spurious_notifications": sum(o.spurious_notifications for o in outcomes),
        "ghost_alarms": sum(len(o.ghost_alarms) for o in outcomes),
        "unseen_alarms": sum(len(o.unseen_alarms) for o in outcomes),
        "in_flight_alarms": sum(len(o.in_flight_alarms) for o in outcomes),
    }
    for o in outcomes:
        result[f"lost_{o.name}"] = o.lost
        result[f"duplicated_{o.name}"] = o.duplicated
        result[f"work_orders_{o.name}"] = sum(o.work_orders.values())
        if o.work_orders:
            result[f"work_orders_by_rule_{o.name}"] = ",".join(f"{r}:{n}" for r, n in sorted(o.work_orders.items()))
        result[f"spurious_work_orders_{o.name}"] = o.spurious_work_orders
        result[f"missing_work_orders_{o.name}"] = o.missing_work_orders
        result[f"ghost_alarms_{o.name}"] = len(o.ghost_alarms)
        result[f"seconds_{o.name}"] = o.seconds
        for key, value in o.extra.items():  # the scenario's own figures (numbers only: the JSON stays flat)
            if isinstance(value, int | float) and key != "ok":
                result[f"{o.name}_{key}"] = value
        if o.ghost_alarms or o.unseen_alarms or o.in_flight_alarms:
            result[f"alarm_state_{o.name}"] = " ".join(
                [f"ghost:{d}/{r}" for d, r in o.ghost_alarms] + [f"unseen:{d}/{r}" for d, r in o.unseen_alarms]
                + [f"in_flight:{d}/{r}" for d, r in o.in_flight_alarms])
        if o.error:
            result[f"error_{o.name}"] = o.error
    return result
