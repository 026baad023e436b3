"""``guanjia cloud wo``: work orders, alarms, butlers and webhooks from the command line.

Registered under ``guanjia cloud`` as ``wo``. The SQL lives in :mod:`cloud.ops.workorders.admin`
(typed rows); everything that changes an order's state goes through the API or the web inbox (so
the state machine, trail and notifications apply).
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from guanjia.app.cli import options
from guanjia.app.cli.options import DbOption

LangOption = typer.Option("zh", "--lang", help="zh (default) or en: the language of the titles.")

app = typer.Typer(help="work orders, alarms, butlers, webhooks.", no_args_is_help=True)
out = Console()

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_SHIFT_RE = re.compile(r"^(\w{3})(?:-(\w{3}))?\s+(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$")


def parse_shift(text: str) -> list[tuple[int, time, time]]:
    """``"mon-fri 08:00-20:00"`` or ``"sat 20:00-08:00"`` (past midnight) → (weekday, start, end)."""
    from guanjia.core.errors import ConfigError, ConfigIssue

    match = _SHIFT_RE.match(text.strip().lower())
    if match is None or match[1] not in _DAYS or (match[2] and match[2] not in _DAYS):
        raise ConfigError([ConfigIssue("command line", None, "--shift",
                                       f"{text!r}: write e.g. 'mon-fri 08:00-20:00' or 'sat 20:00-08:00'")])
    first = _DAYS.index(match[1])
    last = _DAYS.index(match[2]) if match[2] else first
    days = range(first, last + 1) if last >= first else [*range(first, 7), *range(last + 1)]
    return [(d, time.fromisoformat(match[3].zfill(5)), time.fromisoformat(match[4].zfill(5))) for d in days]


@app.command("list")
def list_orders(
    community: str | None = typer.Option(None, "--community", "-c"),
    open_only: bool = typer.Option(False, "--open", help="only unfinished orders"),
    limit: int = typer.Option(50, "--limit"),
    lang: str = LangOption,
    database_url: str | None = DbOption,
) -> None:
    """Work orders, unfinished first."""
    from cloud.db.pool import connect
    from cloud.ops.workorders.admin import list_orders as load_orders
    from guanjia.core.lang import in_lang

    with connect(options.database_url(database_url)) as conn:
        rows = load_orders(conn, community, open_only=open_only, limit=limit)
    table = Table("id", "community", "prio", "state", "title", "assignee", "esc", "opened")
    for r in rows:
        table.add_row(str(r.id), r.community, r.priority, r.state, in_lang(lang, r.title, r.title_zh)[:50], r.assignee,
                      str(r.escalation_level),
                      r.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    out.print(table)


@app.command("show")
def show(work_order: int = typer.Argument(...), lang: str = LangOption, database_url: str | None = DbOption) -> None:
    """One order with its SLA clocks and its whole trail (who, when, where, what)."""
    from cloud.db.pool import connect
    from cloud.ops.notify.masking import mask_name, mask_phone
    from cloud.ops.workorders.admin import order_with_trail
    from guanjia.core.lang import in_lang

    with connect(options.database_url(database_url)) as conn:
        found = order_with_trail(conn, work_order)
    if found is None:
        out.print(f"work order {work_order} does not exist")
        raise typer.Exit(1)
    wo, trail = found
    title = in_lang(lang, wo["title"], wo["title_zh"])
    out.print(f"#{wo['id']} [{wo['priority']}] {title}  state={wo['state']}  community={wo['community']} "
              f"device={wo['device'] or '-'}  origin={wo['origin']}  alarm={wo['alarm_id'] or '-'}")
    if wo["reporter_name"] or wo["reporter_phone"]:  # a terminal is a log: masked
        out.print(f"reporter: {mask_name(wo['reporter_name'] or '')} {mask_phone(wo['reporter_phone'] or '')}")
    out.print(f"respond by {wo['respond_due']:%H:%M:%S}, on site by {wo['on_site_due']:%H:%M:%S}, "
              f"resolve by {wo['resolve_due']:%Y-%m-%d %H:%M}; escalation level {wo['escalation_level']}")
    table = Table("at", "action", "from → to", "actor", "note", "where")
    for t in trail:
        where = f"{t['lat']:.5f},{t['lon']:.5f}" if t["lat"] is not None and t["lon"] is not None else ""
        move = f"{t['from_state'] or ''} → {t['to_state'] or ''}" if t["to_state"] else ""
        table.add_row(f"{t['at']:%Y-%m-%d %H:%M:%S}", t["action"], move, t["actor"], (t["note"] or "")[:60], where)
    out.print(table)


@app.command("alarms")
def alarms(
    community: str | None = typer.Option(None, "--community", "-c"),
    all_: bool = typer.Option(False, "--all", help="also cleared ones"),
    database_url: str | None = DbOption,
) -> None:
    """Current alarms (ACTIVE/CLEARED × ACK/UNACK)."""
    from cloud.db.pool import connect
    from cloud.ops.model.alarms import status
    from cloud.ops.workorders.admin import current_alarms

    with connect(options.database_url(database_url)) as conn:
        rows = current_alarms(conn, community, include_cleared=all_)
    table = Table("id", "community", "device", "rule", "severity", "status", "flaps", "last raised", "source")
    for r in rows:
        table.add_row(str(r.id), r.community, r.device, r.rule, r.severity, status(r.active, r.acknowledged),
                      str(r.flaps), r.last_raised_at.strftime("%Y-%m-%d %H:%M:%S"), r.source)
    out.print(table)


@app.command("butler-add")
def butler_add(
    name: str = typer.Argument(...),
    community: str = typer.Option(..., "--community", "-c"),
    skills: list[str] = typer.Option([], "--skill", help="elevator | water | electrical | access; repeat"),
    buildings: list[str] = typer.Option([], "--building", help="building id; repeat (none: all)"),
    kind: str = typer.Option("full_time", "--kind", help="full_time | volunteer"),
    role: str = typer.Option("butler", "--role", help="butler | team_lead | manager"),
    manager: int | None = typer.Option(None, "--manager", help="butler id of the next escalation step"),
    star: int = typer.Option(3, "--star", min=1, max=5),
    phone: str = typer.Option("", "--phone"),
    email: str = typer.Option("", "--email"),
    user: str | None = typer.Option(None, "--user", help="username of the web account to link"),
    timezone: str = typer.Option("Asia/Shanghai", "--tz"),
    shifts: list[str] = typer.Option([], "--shift", help="'mon-fri 08:00-20:00'; repeat (none: always on duty)"),
    messengers: list[str] = typer.Option(
        [], "--messenger",
        help="wecom://KEY, dingtalk://TOKEN?secret=SEC…, feishu://HOOK?secret=…, a pasted robot webhook "
             "address, or another apprise URL; repeat (checked when added)"),
    database_url: str | None = DbOption,
) -> None:
    """Add a butler (or team lead / manager) with skills, buildings, roster and escalation link.

    The same checks and audit row as ``POST /api/v1/admin/butlers`` (:func:`cloud.ops.routing.staff.create_butler`);
    the audit log names the operating-system user as ``cli:<user>``."""
    import asyncio
    import getpass

    from pydantic import ValidationError

    from cloud.db.pool import connect_async
    from cloud.ops.model.errors import WorkOrderError
    from cloud.ops.routing.staff import NewButler, create_butler
    from guanjia.core.clock import SystemClock
    from guanjia.core.errors import ConfigError, ConfigIssue

    parsed = [{"weekday": d, "starts": a, "ends": b} for text in shifts for d, a, b in parse_shift(text)]
    try:
        new = NewButler.model_validate({
            "name": name, "phone": phone, "email": email, "community": community, "buildings": buildings,
            "skills": skills, "kind": kind, "role": role, "star_level": star, "manager_id": manager,
            "timezone": timezone, "messengers": messengers, "username": user, "shifts": parsed})
    except ValidationError as exc:
        raise ConfigError([ConfigIssue("command line", None, ".".join(map(str, e["loc"])), e["msg"])
                           for e in exc.errors()]) from None
    url = options.database_url(database_url)

    async def _run() -> int:
        async with connect_async(url) as conn:
            butler = await create_butler(conn, new, actor=f"cli:{getpass.getuser()}", now=SystemClock().now())
            await conn.commit()
            return butler.id

    try:
        butler_id = asyncio.run(_run())
    except WorkOrderError as exc:
        raise typer.BadParameter(str(exc)) from exc
    out.print(f"butler {butler_id} added ({name}, {role}, {kind}, {len(parsed)} shifts)")


@app.command("webhook-add")
def webhook_add(
    url: str = typer.Argument(...),
    secret: str = typer.Option(..., "--secret", help="HMAC-SHA256 key shared with the receiver"),
    community: str | None = typer.Option(None, "--community", "-c", help="default: every community"),
    events: list[str] = typer.Option([], "--event", help="e.g. work_order.opened; repeat (none: all)"),
    database_url: str | None = DbOption,
) -> None:
    """Register a signed webhook endpoint."""
    from cloud.db.pool import connect
    from cloud.ops.workorders.admin import add_webhook

    with connect(options.database_url(database_url)) as conn:
        webhook_id = add_webhook(conn, url, secret, community=community, events=events)
    out.print(f"webhook {webhook_id} → {url}")


@app.command("policy-import")
def policy_import(
    community: str = typer.Argument(..., help="the community's code"),
    file: Path = typer.Argument(..., help="a policy YAML in the format of cloud/ops/model/policy.yaml"),
    database_url: str | None = DbOption,
) -> None:
    """Give COMMUNITY the SLA clocks and the reminder interval of a policy file.

    What differs from the platform default (``GUANJIA_WO_POLICY``, else the shipped file) is stored
    as the community's own policy — the same row, checks and audit entry as the admin page's
    ``/admin/policies`` — so a site's old YAML becomes its community's policy in the database."""
    import asyncio
    import getpass
    import os

    from pydantic import ValidationError

    from cloud.db.pool import connect_async
    from cloud.ops.model.policy import load_policy
    from cloud.ops.policies.repo import CommunityPolicy, NotifyPolicy, save
    from cloud.ops.routing.staff import community_exists
    from guanjia.core.clock import SystemClock
    from guanjia.core.errors import ConfigError, ConfigIssue

    base = load_policy(os.environ.get("GUANJIA_WO_POLICY") or None)
    own = load_policy(file)  # errors name the file, line and field
    try:
        wanted = CommunityPolicy(sla=own.priorities, notify=NotifyPolicy(reminder_every=own.reminder_every))
    except ValidationError as exc:
        raise ConfigError([ConfigIssue(str(file), None, "priorities", e["msg"]) for e in exc.errors()]) from None
    url = options.database_url(database_url)

    async def _run() -> list[str]:
        async with connect_async(url) as conn:
            if not await community_exists(conn, community):
                raise typer.BadParameter(f"no community {community!r}")
            stored = await save(conn, base, community, wanted, actor=f"cli:{getpass.getuser()}",
                                now=SystemClock().now())
            await conn.commit()
            return sorted(stored.policy.sla)

    changed = asyncio.run(_run())
    out.print(f"{community}: own clocks for {', '.join(changed) or 'no priority'} (the rest follow the default)")
