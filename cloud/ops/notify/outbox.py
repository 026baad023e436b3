"""Write notifications into the outbox, inside the caller's transaction.

Why an outbox: the work order and the news about it commit together or not at all. An inbox row
is delivered by ``pg_notify`` (sent at commit, to every service process LISTENing, which fan it
out to SSE subscribers); webhook, email and messenger rows are delivered and retried by
:class:`cloud.ops.delivery.sender.NotificationSender`. ``dedup_key`` makes a replay never notify twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final, NamedTuple

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from cloud.db.rows import insert_sql
from cloud.ops.notify.masking import mask_name, mask_phone, mask_text

log = logging.getLogger(__name__)

INBOX_CHANNEL: Final = "guanjia_inbox"
OUTBOX_CHANNEL: Final = "guanjia_outbox"
MAX_NOTIFY_BYTES: Final = 7000  # pg_notify payloads must stay under 8000 bytes


class NotificationRow(NamedTuple):
    """One ``notifications`` row as :func:`_insert` writes it; the field order is the column order
    of :data:`_INSERT_NOTIFICATION` (the inbox and webhook rows are written by their own
    ``INSERT … SELECT`` statements, by name)."""

    channel: str
    butler_id: int | None
    target: str
    event: str
    community: str | None
    work_order_id: int | None
    alarm_id: int | None
    subject: str
    body: str
    payload: Jsonb
    state: str
    next_attempt_at: datetime | None
    dedup_key: str | None
    created_at: datetime
    sent_at: datetime | None


_INSERT_NOTIFICATION: Final = (insert_sql("notifications", NotificationRow)
                               + " ON CONFLICT (dedup_key) DO NOTHING RETURNING id")


async def _insert(
    conn: AsyncConnection[Any],
    *,
    channel: str,
    event: str,
    now: datetime,
    state: str,
    butler_id: int | None = None,
    target: str = "",
    community: str | None = None,
    work_order_id: int | None = None,
    alarm_id: int | None = None,
    subject: str = "",
    body: str = "",
    payload: dict[str, Any] | None = None,
    dedup_key: str | None = None,
) -> int | None:
    cur = await conn.execute(_INSERT_NOTIFICATION, NotificationRow(
        channel=channel, butler_id=butler_id, target=target, event=event, community=community,
        work_order_id=work_order_id, alarm_id=alarm_id, subject=subject, body=body, payload=Jsonb(payload or {}),
        state=state, next_attempt_at=None if state == "sent" else now, dedup_key=dedup_key, created_at=now,
        sent_at=now if state == "sent" else None))
    row = await cur.fetchone()
    return int(row[0]) if row else None


def render_work_order(wo: dict[str, Any], event: str, *, reveal_pii: bool) -> tuple[str, str, dict[str, Any]]:
    """Subject, body and JSON payload for a work-order event; PII masked unless ``reveal_pii``."""
    name = wo.get("reporter_name") or ""
    phone = wo.get("reporter_phone") or ""
    if not reveal_pii:
        name, phone = mask_name(name), mask_phone(phone)
    description = wo.get("description") or ""
    if not reveal_pii:
        description = mask_text(description)
    place = (wo.get("community"), wo.get("building"), wo.get("location") or wo.get("device"))
    where = " / ".join(x for x in place if x)
    title = wo["title"] if reveal_pii else mask_text(wo["title"])
    subject = f"[{wo['priority']}] {title} (#{wo['id']})"
    lines = [subject, f"event: {event}", f"where: {where}", f"state: {wo['state']}"]
    if wo.get("respond_due"):
        lines.append(f"accept by: {wo['respond_due'].isoformat()}  on site by: {wo['on_site_due'].isoformat()}")
    if description:
        lines.append(description)
    if name or phone:
        lines.append(f"reporter: {name} {phone}".rstrip())
    payload = {
        "event": event,
        "work_order": {
            "id": wo["id"], "title": title, "priority": wo["priority"], "state": wo["state"],
            "community": wo["community"], "building": wo.get("building"), "device": wo.get("device"),
            "device_kind": wo.get("device_kind"), "alarm_id": wo.get("alarm_id"),
            "assignee_id": wo.get("assignee_id"), "escalation_level": wo.get("escalation_level", 0),
            "respond_due": _iso(wo.get("respond_due")), "on_site_due": _iso(wo.get("on_site_due")),
            "reporter_name": name or None, "reporter_phone": phone or None,
            "created_at": _iso(wo.get("created_at")),
        },
    }
    return subject, "\n".join(lines), payload


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


async def notify_butler(
    conn: AsyncConnection[Any],
    butler_id: int,
    wo: dict[str, Any],
    event: str,
    now: datetime,
    *,
    reveal_pii: bool,
    dedup: str | None = None,
    sms: bool = False,
) -> int | None:
    """Inbox (live, SSE) + the butler's email and messengers, all in the caller's transaction;
    with ``sms`` (a P0 order escalated because nobody accepted it) also a text to the butler's
    phone, which reaches them when no app is open. The community's notification policy
    (``community_policies.notify``, :mod:`cloud.ops.policies.repo`) may switch email, messengers
    and the SMS off; the inbox row is always written."""
    subject, body, payload = render_work_order(wo, event, reveal_pii=reveal_pii)
    key = f"{dedup}:b{butler_id}" if dedup else None
    # the inbox row and its live NOTIFY in one round trip; the payload is completed with the id
    head = orjson.dumps({"butler": butler_id, "event": event, "subject": subject, "payload": payload},
                        default=str).decode()
    if len(head) > MAX_NOTIFY_BYTES:  # keep the essentials; the client can fetch the rest
        head = orjson.dumps({"butler": butler_id, "event": event, "subject": subject[:200]}).decode()
    res = await conn.execute(
        """WITH ins AS (
             INSERT INTO notifications (channel, butler_id, event, community, work_order_id, alarm_id, subject, body,
                                        payload, state, dedup_key, created_at, sent_at)
             VALUES ('inbox', %(butler)s, %(event)s, %(community)s, %(wo)s, %(alarm)s, %(subject)s, %(body)s,
                     %(payload)s, 'sent', %(dedup)s, %(now)s, %(now)s)
             ON CONFLICT (dedup_key) DO NOTHING RETURNING id)
           SELECT ins.id, pg_notify(%(channel)s, '{"id": ' || ins.id || ', ' || substr(%(head)s, 2)),
                  b.email, b.messengers, b.phone,
                  coalesce((p.notify ->> 'email')::boolean, true),
                  coalesce((p.notify ->> 'messengers')::boolean, true),
                  coalesce((p.notify ->> 'sms_escalation')::boolean, true)
           FROM ins JOIN butlers b ON b.id = %(butler)s
           LEFT JOIN community_policies p ON p.community = %(community)s""",
        {"butler": butler_id, "event": event, "community": wo["community"], "wo": wo["id"],
         "alarm": wo.get("alarm_id"), "subject": subject, "body": body, "payload": Jsonb(payload),
         "dedup": f"{key}:inbox" if key else None, "now": now, "channel": INBOX_CHANNEL, "head": head},
    )
    row = await res.fetchone()
    if row is None:
        return None  # already notified (replay)
    inbox_id, email, messengers, phone = int(row[0]), row[2], row[3], row[4]
    # the community's notification policy (cloud.ops.policies, read in the same statement): the
    # inbox always gets the news; email, messenger robots and the P0 SMS only where switched on
    if not row[5]:
        email = None
    if not row[6]:
        messengers = []
    sms = sms and bool(row[7])
    queued = False
    if sms and phone:
        # a text message is short and may sit on a lock screen: the masked subject only
        s_subject, _s_body, _s_payload = render_work_order(wo, event, reveal_pii=False)
        queued |= await _insert(conn, channel="sms", event=event, now=now, state="pending", butler_id=butler_id,
                                target=phone, community=wo["community"], work_order_id=wo["id"],
                                alarm_id=wo.get("alarm_id"), subject=s_subject, body=s_subject,
                                dedup_key=f"{key}:sms" if key else None) is not None
    if email:
        queued |= await _insert(conn, channel="email", event=event, now=now, state="pending", butler_id=butler_id,
                                target=email, community=wo["community"], work_order_id=wo["id"],
                                alarm_id=wo.get("alarm_id"), subject=subject, body=body, payload=payload,
                                dedup_key=f"{key}:email" if key else None) is not None
    for url in messengers or []:
        # messenger groups are shared rooms: always masked
        m_subject, m_body, m_payload = render_work_order(wo, event, reveal_pii=False)
        queued |= await _insert(conn, channel="messenger", event=event, now=now, state="pending",
                                butler_id=butler_id, target=url, community=wo["community"], work_order_id=wo["id"],
                                alarm_id=wo.get("alarm_id"), subject=m_subject, body=m_body, payload=m_payload,
                                dedup_key=f"{key}:m:{url}" if key else None) is not None
    if queued:
        await conn.execute("SELECT pg_notify(%s, '')", (OUTBOX_CHANNEL,))
    return inbox_id


async def notify_webhooks(
    conn: AsyncConnection[Any],
    community: str,
    event: str,
    payload: dict[str, Any],
    now: datetime,
    *,
    work_order_id: int | None = None,
    alarm_id: int | None = None,
    dedup: str | None = None,
) -> int:
    """Queue one signed webhook per matching endpoint (one round trip, also when there is none);
    payloads must already be masked."""
    body = {"event": event, "community": community, **payload}
    cur = await conn.execute(
        """WITH ins AS (
             INSERT INTO notifications (channel, target, event, community, work_order_id, alarm_id, payload, state,
                                        next_attempt_at, dedup_key, created_at)
             SELECT 'webhook', e.url, %(event)s, %(community)s, %(wo)s, %(alarm)s,
                    jsonb_build_object('endpoint', e.id, 'body', %(body)s::jsonb), 'pending', %(now)s,
                    CASE WHEN %(dedup)s::text IS NULL THEN NULL ELSE %(dedup)s || ':w' || e.id END, %(now)s
             FROM webhook_endpoints e
             WHERE e.active AND (e.community IS NULL OR e.community = %(community)s)
               AND (cardinality(e.events) = 0 OR %(event)s = ANY(e.events))
             ON CONFLICT (dedup_key) DO NOTHING RETURNING 1)
           SELECT count(*), CASE WHEN count(*) > 0 THEN pg_notify(%(channel)s, '') END FROM ins""",
        {"event": event, "community": community, "wo": work_order_id, "alarm": alarm_id,
         "body": orjson.dumps(body, default=str).decode(), "now": now, "dedup": dedup, "channel": OUTBOX_CHANNEL},
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


RESIDENT_CHANNEL: Final = "guanjia_resident"
#: the steps of an order a resident hears about (``resident.step.<step>`` in the page catalogs)
RESIDENT_STEPS: Final = ("received", "assigned", "on_the_way", "on_site", "resolved", "closed", "reopened",
                         "cancelled")


async def notify_residents(
    conn: AsyncConnection[Any],
    wo: dict[str, Any],
    step: str,
    now: datetime,
    *,
    butler_id: int | None = None,
    only_user: int | None = None,
) -> int:
    """Tell the residents behind ``wo`` (its reporter and everyone whose report was linked to it)
    that it reached ``step``, in the caller's transaction; return how many were told.

    One inbox row per resident (``user_id``) and one ``pg_notify`` on :data:`RESIDENT_CHANNEL` each,
    delivered at commit to the residents' live phone pages. The row holds the step and its
    parameters, not a sentence: the page renders it in the reader's language. Only the butler's
    name is shown — never their phone — and the title is the stored (already masked) one."""
    if step not in RESIDENT_STEPS:
        raise ValueError(f"unknown resident step {step!r}")
    event = f"resident.{step}"
    cur = await conn.execute(
        """WITH who AS (
             SELECT DISTINCT u FROM (
               SELECT %(reporter)s::bigint AS u
               UNION SELECT reporter_user_id FROM resident_reports WHERE work_order_id = %(wo)s) s
             WHERE u IS NOT NULL AND (%(only)s::bigint IS NULL OR u = %(only)s)),
           data AS (
             SELECT jsonb_build_object('step', %(step)s::text, 'work_order', %(wo)s::bigint, 'title', %(title)s::text,
                                       'state', %(state)s::text,
                                       'butler', (SELECT name FROM butlers WHERE id = %(butler)s::bigint)) AS payload),
           ins AS (
             INSERT INTO notifications (channel, user_id, event, community, work_order_id, subject, payload, state,
                                        created_at, sent_at)
             SELECT 'inbox', who.u, %(event)s, %(community)s, %(wo)s, %(title)s, data.payload, 'sent', %(now)s, %(now)s
             FROM who, data RETURNING id, user_id, payload)
           SELECT pg_notify(%(channel)s, jsonb_build_object('id', id, 'user', user_id, 'event', %(event)s::text,
                                                            'payload', payload, 'at', %(now)s::timestamptz)::text)
           FROM ins""",
        {"reporter": wo.get("reporter_user_id"), "wo": wo["id"], "only": only_user, "step": step,
         "title": wo["title"], "state": wo["state"], "butler": butler_id, "event": event,
         "community": wo["community"], "now": now, "channel": RESIDENT_CHANNEL},
    )
    return len(await cur.fetchall())
