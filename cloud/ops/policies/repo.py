"""A community's own SLA and notification policy (``community_policies``, migration 620).

Why overrides on top of the YAML and not a copy of it: the YAML policy (the shipped
``policy.yaml`` or ``--policy FILE``) is the platform's default and holds much more than a
community changes (rule overrides, inhibition, complaint grades, points). A community's row names
only what differs — the four clocks of some priorities, some notification switches — so a new
default in the YAML still reaches every community that did not decide otherwise, and "reset to
default" is deleting the row. The admin page shows the *effective* values (YAML plus row), so the
first save of a community is the import of its YAML values.

Where it takes effect: :func:`effective` is what the work-order repository
(:func:`cloud.ops.workorders.repo.open_order`, assignment, transitions) and escalation call with
the service's one policy before computing any deadline; the notification switches are read by
:func:`cloud.ops.notify.outbox.notify_butler` in the same statement that writes the inbox row
(:data:`NOTIFY_DEFAULTS` names them). Every save and reset writes an ``admin_audit`` row in the
caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.db import audit
from cloud.ops.model.policy import Clocks, Duration, Policy, Priority

#: what a community without a row gets; ``notify_butler`` spells the same defaults in SQL
NOTIFY_DEFAULTS: Final = {"email": True, "messengers": True, "sms_escalation": True}


class NotifyPolicy(BaseModel):
    """Which channels reach a community's butlers besides the inbox (which always does), and how
    often the top of an exhausted escalation chain is reminded (``None``: the YAML's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: bool = True
    messengers: bool = True
    sms_escalation: bool = Field(True, description="a P0 nobody accepted also goes out by SMS")
    reminder_every: Duration | None = None


class CommunityPolicy(BaseModel):
    """One community's overrides: the clocks of the priorities it names, its notification settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sla: dict[Priority, Clocks] = Field(default_factory=dict)
    notify: NotifyPolicy = NotifyPolicy()

    @model_validator(mode="after")
    def _ordered(self) -> CommunityPolicy:
        for priority, clocks in self.sla.items():
            if not clocks.respond <= clocks.on_site <= clocks.resolve:
                raise ValueError(f"{priority}: respond ≤ on site ≤ resolve (got {clocks.respond}, "
                                 f"{clocks.on_site}, {clocks.resolve})")
            if clocks.escalate_every <= dt.timedelta(0) or clocks.respond <= dt.timedelta(0):
                raise ValueError(f"{priority}: respond and escalate_every must be longer than zero")
        reminder = self.notify.reminder_every
        if reminder is not None and reminder < dt.timedelta(minutes=1):
            raise ValueError("reminder_every: at least one minute")
        return self


class StoredPolicy(BaseModel):
    """A community's row as the admin API and page show it: its overrides and who saved them."""

    community: str
    policy: CommunityPolicy
    updated_at: dt.datetime | None
    updated_by: str | None


class ClockView(BaseModel):
    """One priority's clocks in force, spelled as the YAML spells them (``2h``, ``1h30m``)."""

    respond: str
    on_site: str
    resolve: str
    escalate_every: str
    label: str
    overridden: bool


class NotifyView(BaseModel):
    email: bool
    messengers: bool
    sms_escalation: bool
    reminder_every: str
    reminder_overridden: bool


class PolicyView(BaseModel):
    """A community's policy in force (the API's answer and the admin page's view)."""

    community: str
    sla: dict[str, ClockView]
    notify: NotifyView
    updated_at: dt.datetime | None
    updated_by: str | None


def spell(value: dt.timedelta) -> str:
    """A duration as the policy files write it: ``90s`` → ``1m30s``, ``7200s`` → ``2h``."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def view(base: Policy, stored: StoredPolicy) -> PolicyView:
    own = stored.policy
    merged = merge(base, own)
    sla = {p: ClockView(respond=spell(c.respond), on_site=spell(c.on_site), resolve=spell(c.resolve),
                        escalate_every=spell(c.escalate_every), label=base.priorities[p].label or c.label,
                        overridden=p in own.sla) for p, c in sorted(merged.priorities.items())}
    notify = NotifyView(email=own.notify.email, messengers=own.notify.messengers,
                        sms_escalation=own.notify.sms_escalation, reminder_every=spell(merged.reminder_every),
                        reminder_overridden=own.notify.reminder_every is not None)
    return PolicyView(community=stored.community, sla=sla, notify=notify, updated_at=stored.updated_at,
                      updated_by=stored.updated_by)


def minimal(base: Policy, own: CommunityPolicy) -> CommunityPolicy:
    """Only what differs from ``base``: a clock set equal to the YAML's is no override, so a later
    change of the YAML default still reaches this community."""
    def same(a: Clocks, b: Clocks) -> bool:
        return (a.respond, a.on_site, a.resolve, a.escalate_every) == (b.respond, b.on_site, b.resolve,
                                                                        b.escalate_every)
    sla = {p: c for p, c in own.sla.items() if p not in base.priorities or not same(c, base.priorities[p])}
    notify = own.notify
    if notify.reminder_every == base.reminder_every:
        notify = notify.model_copy(update={"reminder_every": None})
    return CommunityPolicy(sla=sla, notify=notify)


def _seconds(clocks: Clocks) -> dict[str, Any]:
    return {"respond": clocks.respond.total_seconds(), "on_site": clocks.on_site.total_seconds(),
            "resolve": clocks.resolve.total_seconds(), "escalate_every": clocks.escalate_every.total_seconds(),
            "label": clocks.label}


def _to_json(policy: CommunityPolicy) -> tuple[dict[str, Any], dict[str, Any]]:
    sla: dict[str, Any] = {p: _seconds(c) for p, c in policy.sla.items()}
    notify: dict[str, Any] = policy.notify.model_dump(exclude={"reminder_every"})
    if policy.notify.reminder_every is not None:
        notify["reminder_every"] = policy.notify.reminder_every.total_seconds()
    return sla, notify


async def load(conn: AsyncConnection[Any], community: str) -> StoredPolicy:
    """The community's overrides (empty ones when it has no row)."""
    cur = await conn.execute("SELECT sla, notify, updated_at, updated_by FROM community_policies "
                             "WHERE community = %s", (community,))
    row = await cur.fetchone()
    if row is None:
        return StoredPolicy(community=community, policy=CommunityPolicy(), updated_at=None, updated_by=None)
    return StoredPolicy(community=community, policy=CommunityPolicy.model_validate({"sla": row[0], "notify": row[1]}),
                        updated_at=row[2], updated_by=row[3])


def merge(base: Policy, own: CommunityPolicy) -> Policy:
    """``base`` with the community's clocks and reminder interval in place of the YAML's."""
    if not own.sla and own.notify.reminder_every is None:
        return base
    labelled = {p: c if c.label or p not in base.priorities
                else c.model_copy(update={"label": base.priorities[p].label}) for p, c in own.sla.items()}
    update: dict[str, Any] = {"priorities": {**base.priorities, **labelled}}
    if own.notify.reminder_every is not None:
        update["reminder_every"] = own.notify.reminder_every
    return base.model_copy(update=update)


async def effective(conn: AsyncConnection[Any], base: Policy, community: str) -> Policy:
    """The policy in force for ``community``: what every deadline of its work orders is computed with."""
    return merge(base, (await load(conn, community)).policy)


async def save(conn: AsyncConnection[Any], base: Policy, community: str, policy: CommunityPolicy, *, actor: str,
               now: dt.datetime) -> StoredPolicy:
    """Replace the community's overrides with what of ``policy`` differs from ``base`` (in the
    caller's transaction, audited)."""
    policy = minimal(base, policy)
    sla, notify = _to_json(policy)
    await conn.execute(
        "INSERT INTO community_policies (community, sla, notify, updated_at, updated_by) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (community) DO UPDATE SET sla = excluded.sla, notify = excluded.notify, "
        "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        (community, Jsonb(sla), Jsonb(notify), now, actor[:100]))
    await audit.record(conn, at=now, actor=actor, action="policy.updated", community=community,
                       target=f"policy {community}", detail={"sla": sla, "notify": notify})
    return StoredPolicy(community=community, policy=policy, updated_at=now, updated_by=actor)


async def reset(conn: AsyncConnection[Any], community: str, *, actor: str, now: dt.datetime) -> bool:
    """Back to the platform default; ``False`` when the community had no overrides."""
    cur = await conn.execute("DELETE FROM community_policies WHERE community = %s RETURNING community", (community,))
    if await cur.fetchone() is None:
        return False
    await audit.record(conn, at=now, actor=actor, action="policy.reset", community=community,
                       target=f"policy {community}")
    return True
