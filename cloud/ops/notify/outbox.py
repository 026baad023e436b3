"""Write notifications into the outbox, inside the caller's transaction.

Why an outbox: the work order and the news about it commit together or not at all. An inbox row
is delivered by ``pg_notify`` (sent at commit, to every service process LISTENing, which fan it
out to SSE subscribers); webhook, email and messenger rows are delivered and retried by
:class:`cloud.ops.delivery.sender.NotificationSender`. ``dedup_key`` makes a replay never notify twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from cloud.db.rows import insert_sql
from cloud.ops.notify import templates, wording
from cloud.ops.notify.channels import is_robot
from cloud.ops.notify.masking import mask_name, mask_phone, mask_text
from cloud.ops.notify.templates import SHIPPED, Format, Wording
from cloud.queries.history import rule_titles
from guanjia.core.lang import in_lang

log = logging.getLogger(__name__)

INBOX_CHANNEL: Final = "guanjia_inbox"
OUTBOX_CHANNEL: Final = "guanjia_outbox"
MAX_NOTIFY_BYTES: Final = 7000  # pg_notify payloads must stay under 8000 bytes
VOICE_AFTER: Final = timedelta(minutes=1)
"""An unaccepted P0's voice call follows its text message by this much: time to read the text."""


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
    due: datetime | None = None,
) -> int | None:
    cur = await conn.execute(_INSERT_NOTIFICATION, NotificationRow(
        channel=channel, butler_id=butler_id, target=target, event=event, community=community,
        work_order_id=work_order_id, alarm_id=alarm_id, subject=subject, body=body, payload=Jsonb(payload or {}),
        state=state, next_attempt_at=None if state == "sent" else (due or now), dedup_key=dedup_key, created_at=now,
        sent_at=now if state == "sent" else None))
    row = await cur.fetchone()
    return int(row[0]) if row else None


def title_in(wo: dict[str, Any], rule: str | None, lang: str | None) -> str | None:
    """An alarm-born order's title in ``lang`` — the device and its rule's zh/en name (「lift-2：电梯困人」)
    — or None when the rule has no title (the stored title, the edge's English message, stands)."""
    found = rule_titles().get(rule) if rule else None
    if found is None:
        return None
    name = found.get(templates.lang_of(lang))
    if not wo.get("device"):
        return name
    return f"{wo['device']}{': ' if templates.lang_of(lang) == 'en' else '：'}{name}"


def render_work_order(wo: dict[str, Any], event: str, *, reveal_pii: bool, lang: str | None = None,
                      fmt: Format = "email", tz: str | None = None,
                      rule: str | None = None, words: Wording = SHIPPED) -> tuple[str, str, dict[str, Any]]:
    """Subject, body and JSON payload for a work-order event; PII masked unless ``reveal_pii``.

    The words come from :mod:`cloud.ops.notify.templates` in ``lang`` (Chinese by default) shaped
    for ``fmt`` (markdown for the robots, a short line for SMS, labelled lines for email), with
    deadlines in the community's zone ``tz``, in the community's own ``words`` where it has them;
    the payload (webhooks: machines) stays language-free."""
    name = wo.get("reporter_name") or ""
    phone = wo.get("reporter_phone") or ""
    if not reveal_pii:
        name, phone = mask_name(name), mask_phone(phone)
    description = wo.get("description") or ""
    if not reveal_pii:
        description = mask_text(description)
    place = (wo.get("community"), wo.get("building"), wo.get("location") or wo.get("device"))
    where = " / ".join(x for x in place if x)
    title, title_zh = wo["title"], wo.get("title_zh") or wo["title"]
    if not reveal_pii:
        title, title_zh = mask_text(title), mask_text(title_zh)
    shown = title_in(wo, rule, lang) or in_lang(templates.lang_of(lang), title, title_zh)
    code = event if templates.has(event) else "work_order.other"
    lines: list[tuple[str, str]] = [("label.priority", wo["priority"]), ("label.where", where),
                                    ("label.state", templates.text(f"state.{wo['state']}", lang))]
    if wo.get("respond_due"):
        lines += [("label.accept_by", templates.local(wo["respond_due"], tz)),
                  ("label.on_site_by", templates.local(wo.get("on_site_due"), tz))]
    if event in ("work_order.escalated", "work_order.reminder") and wo.get("escalation_level"):
        lines.append(("label.escalation", templates.text("escalation.level", lang, level=wo["escalation_level"])))
    if description and not title.endswith(description) and description not in (title_zh, shown):
        # an alarm-born order's description is its alarm's English message: the title says it already
        lines.append(("label.details", description))
    if name or phone:
        lines.append(("label.reporter", f"{name} {phone}".strip()))
    message = templates.render(code, lang, fmt, {"id": wo["id"], "title": shown}, lines, words)
    subject = f"[{wo['priority']}] {templates.text(code, lang, fmt=fmt, words=words, id=wo['id'], title=shown)}"
    if fmt == "sms":  # the whole text message is one short line
        subject = templates.sms_text(subject)
        message = templates.Rendered(subject, subject, {"title": subject})
    payload = {
        "event": event,
        "work_order": {
            "id": wo["id"], "title": title, "title_zh": title_zh, "priority": wo["priority"], "state": wo["state"],
            "community": wo["community"], "building": wo.get("building"), "device": wo.get("device"),
            "device_kind": wo.get("device_kind"), "alarm_id": wo.get("alarm_id"),
            "assignee_id": wo.get("assignee_id"), "escalation_level": wo.get("escalation_level", 0),
            "respond_due": _iso(wo.get("respond_due")), "on_site_due": _iso(wo.get("on_site_due")),
            "reporter_name": name or None, "reporter_phone": phone or None,
            "created_at": _iso(wo.get("created_at")),
        },
    }
    return subject, message.body, payload


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
    phone, which reaches them when no app is open, and a voice call :data:`VOICE_AFTER` later that
    the sender skips if the order was accepted meanwhile (a ringing phone for an order already
    taken would teach people to ignore the calls).

    Every copy is in the butler's language (their web account's, Chinese by default) with times in
    the community's zone. The community's notification policy (``community_policies.notify``,
    :mod:`cloud.ops.policies.repo`) may switch email, messengers and the escalation SMS off; the
    account's channel preference (:mod:`cloud.ops.notify.preferences`) adds its channel (within the
    community's switches), or with ``inapp`` keeps email and messengers quiet — never the
    escalation SMS, which is a duty, not a preference. The inbox row is always written."""
    cur = await conn.execute(
        """SELECT b.email, b.messengers, b.phone, u.lang, coalesce(c.timezone, b.timezone), u.notify_channel,
                  u.notify_target, (SELECT rule FROM alarms WHERE id = %s),
                  coalesce((p.notify ->> 'email')::boolean, true),
                  coalesce((p.notify ->> 'messengers')::boolean, true),
                  coalesce((p.notify ->> 'sms_escalation')::boolean, true)
           FROM butlers b LEFT JOIN users u ON u.id = b.user_id LEFT JOIN communities c ON c.code = %s
           LEFT JOIN community_policies p ON p.community = %s
           WHERE b.id = %s""", (wo.get("alarm_id"), wo["community"], wo["community"], butler_id))
    found = await cur.fetchone()
    if found is None:
        return None
    (email, messengers, phone, lang, tz, preferred, preferred_target, rule, email_on, messengers_on,
     sms_on) = found
    subject, body, payload = render_work_order(wo, event, reveal_pii=reveal_pii, lang=lang, tz=tz, rule=rule)
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
           SELECT ins.id, pg_notify(%(channel)s, '{"id": ' || ins.id || ', ' || substr(%(head)s, 2)) FROM ins""",
        {"butler": butler_id, "event": event, "community": wo["community"], "wo": wo["id"],
         "alarm": wo.get("alarm_id"), "subject": subject, "body": body, "payload": Jsonb(payload),
         "dedup": f"{key}:inbox" if key else None, "now": now, "channel": INBOX_CHANNEL, "head": head},
    )
    row = await res.fetchone()
    if row is None:
        return None  # already notified (replay)
    inbox_id = int(row[0])
    quiet = preferred == "inapp"
    copies: list[tuple[str, str]] = [("email", email)] if email and email_on and not quiet else []
    if messengers_on and not quiet:
        copies += [("messenger", url) for url in messengers or []]
    sms = sms and bool(sms_on)
    if sms and phone:
        # a text now and a phone call a minute later, unless the order is accepted by then
        copies += [("sms", phone), ("voice", phone)]
    allowed = {"email": email_on, "messenger": messengers_on, "sms": True}  # the community's switches
    if preferred in allowed and preferred_target and allowed[preferred]:
        copies.append((preferred, preferred_target))
    queued = False
    words = await wording.load(conn, wo["community"]) if copies else SHIPPED
    for channel, target in dict.fromkeys(copies):
        queued |= await _queue_copy(conn, channel, target, wo, event, now, lang=lang, tz=tz, rule=rule, words=words,
                                    reveal_pii=reveal_pii and channel == "email", butler_id=butler_id,
                                    dedup_key=f"{key}:{channel[0]}:{target}" if key else None,
                                    due=now + VOICE_AFTER if channel == "voice" else None) is not None
    if queued:
        await conn.execute("SELECT pg_notify(%s, '')", (OUTBOX_CHANNEL,))
    return inbox_id


async def _queue_copy(conn: AsyncConnection[Any], channel: str, target: str, wo: dict[str, Any], event: str,
                      now: datetime, *, lang: str | None, tz: str | None, rule: str | None, reveal_pii: bool,
                      butler_id: int, dedup_key: str | None, due: datetime | None = None,
                      words: Wording = SHIPPED) -> int | None:
    """One outbound copy of a work-order message, shaped for its channel: a messenger group is a
    shared room and an SMS or a call may sit on a lock screen or be heard by anyone, so they are
    always masked; a robot gets markdown, an SMS and a call one short line, an email labelled lines."""
    fmt: Format = "email"
    if channel in ("sms", "voice"):
        fmt = "sms"
    elif channel == "messenger":
        fmt = "markdown" if is_robot(target) else "email"
    subject, body, payload = render_work_order(wo, event, reveal_pii=reveal_pii, lang=lang, fmt=fmt, tz=tz,
                                               rule=rule, words=words)
    if fmt == "markdown":
        payload["format"] = "markdown"
    return await _insert(conn, channel=channel, event=event, now=now, state="pending", butler_id=butler_id,
                         target=target, community=wo["community"], work_order_id=wo["id"],
                         alarm_id=wo.get("alarm_id"), subject=subject, body=body, payload=payload,
                         dedup_key=dedup_key, due=due)


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
#: the steps of an order a resident hears about (``resident.<step>`` in :mod:`cloud.ops.notify.templates`)
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
                                       'title_zh', %(title_zh)s::text, 'state', %(state)s::text,
                                       'butler', (SELECT name FROM butlers WHERE id = %(butler)s::bigint)) AS payload),
           ins AS (
             INSERT INTO notifications (channel, user_id, event, community, work_order_id, subject, payload, state,
                                        created_at, sent_at)
             SELECT 'inbox', who.u, %(event)s, %(community)s, %(wo)s, %(title)s, data.payload, 'sent', %(now)s, %(now)s
             FROM who, data RETURNING id, user_id, payload)
           SELECT pg_notify(%(channel)s, jsonb_build_object('id', ins.id, 'user', ins.user_id, 'event', %(event)s::text,
                                                            'payload', ins.payload, 'at', %(now)s::timestamptz)::text),
                  ins.user_id, u.lang, u.notify_channel, u.notify_target, ins.payload,
                  (SELECT timezone FROM communities WHERE code = %(community)s)
           FROM ins LEFT JOIN users u ON u.id = ins.user_id""",
        {"reporter": wo.get("reporter_user_id"), "wo": wo["id"], "only": only_user, "step": step,
         "title": wo["title"], "title_zh": wo.get("title_zh") or wo["title"], "state": wo["state"],
         "butler": butler_id, "event": event,
         "community": wo["community"], "now": now, "channel": RESIDENT_CHANNEL},
    )
    rows = await cur.fetchall()
    queued = False
    copies = [row for row in rows if row[3] in ("sms", "email", "messenger") and row[4]]
    words = await wording.load(conn, wo["community"]) if copies else SHIPPED
    for _notified, user_id, lang, channel, target, payload, tz in copies:
        queued |= await _insert(conn, channel=channel, event=event, now=now, state="pending", target=target,
                                community=wo["community"], work_order_id=wo["id"],
                                **resident_copy(channel, target, payload, lang, tz, now, words),
                                dedup_key=f"{event}:wo{wo['id']}:u{user_id}:{now.timestamp()}") is not None
    if queued:
        await conn.execute("SELECT pg_notify(%s, '')", (OUTBOX_CHANNEL,))
    return len(rows)


def resident_step(payload: dict[str, Any], lang: str | None, fmt: Format = "text", words: Wording = SHIPPED) -> str:
    """The sentence of one resident message (inbox, SSE, page and channel alike): a work order's
    step, or a message stored as a template code and its parameters (complaints); a channel copy
    passes its ``fmt`` and the community's ``words``."""
    if "code" in payload:  # a grade is stored as its code and worded in the reader's language
        params = dict(payload.get("params") or {})
        if "grade" in params:
            params["grade"] = templates.text(f"grade.{params['grade']}", lang)
        return templates.text(str(payload["code"]), lang, fmt=fmt, words=words, **params)
    butler = payload.get("butler") or templates.text("resident.staff", lang, fmt=fmt, words=words)
    return templates.text(f"resident.{payload.get('step')}", lang, fmt=fmt, words=words, id=payload.get("work_order"),
                          title=in_lang(templates.lang_of(lang), payload.get("title") or "", payload.get("title_zh")),
                          butler=butler)


async def notify_resident(conn: AsyncConnection[Any], user_id: int, community: str, code: str,
                          params: dict[str, Any], now: datetime) -> int | None:
    """One message to one resident (a complaint's step): stored as ``code`` + ``params`` so the
    page renders it in the reader's language, live over :data:`RESIDENT_CHANNEL`, and copied to
    the resident's chosen channel, in the caller's transaction; return the inbox id."""
    payload = {"code": code, "params": params, "state": params.get("state")}
    cur = await conn.execute(
        """WITH ins AS (
             INSERT INTO notifications (channel, user_id, event, community, subject, payload, state, created_at,
                                        sent_at)
             VALUES ('inbox', %(user)s, %(event)s, %(community)s, '', %(payload)s, 'sent', %(now)s, %(now)s)
             RETURNING id, user_id, payload)
           SELECT pg_notify(%(channel)s, jsonb_build_object('id', ins.id, 'user', ins.user_id, 'event', %(event)s::text,
                                                            'payload', ins.payload, 'at', %(now)s::timestamptz)::text),
                  ins.id, u.lang, u.notify_channel, u.notify_target, ins.payload,
                  (SELECT timezone FROM communities WHERE code = %(community)s)
           FROM ins LEFT JOIN users u ON u.id = ins.user_id""",
        {"user": user_id, "event": code, "community": community, "payload": Jsonb(payload), "now": now,
         "channel": RESIDENT_CHANNEL})
    row = await cur.fetchone()
    if row is None:
        return None
    _notified, inbox_id, lang, channel, target, stored, tz = row
    if channel in ("sms", "email", "messenger") and target:
        words = await wording.load(conn, community)
        await _insert(conn, channel=channel, event=code, now=now, state="pending", target=target, community=community,
                      **resident_copy(channel, target, stored, lang, tz, now, words), dedup_key=f"{code}:n{inbox_id}")
        await conn.execute("SELECT pg_notify(%s, '')", (OUTBOX_CHANNEL,))
    return int(inbox_id)


def resident_copy(channel: str, target: str, payload: dict[str, Any], lang: str | None, tz: str | None,
                  now: datetime, words: Wording = SHIPPED) -> dict[str, Any]:
    """Subject, body and payload of a resident step for their own channel, in their language: the
    step's sentence, and for email and robots the state and the time in the community's zone. Only
    the butler's name and the stored (masked) title appear, never anyone's phone."""
    fmt: Format = "sms" if channel == "sms" else "markdown" if channel == "messenger" and is_robot(target) else "email"
    sentence = resident_step(payload, lang, fmt, words)
    state = payload.get("state")
    lines = [("label.state", templates.text(f"complaint.state.{state}" if "code" in payload else f"state.{state}",
                                            lang) if state else ""),
             ("label.time", templates.local(now, tz))]
    message = templates.render("resident.line", lang, fmt, {"text": sentence}, lines, words)
    subject = (templates.text("complaint.subject", lang, fmt=fmt, words=words,
                              id=(payload.get("params") or {}).get("id"))
               if "code" in payload else templates.text("resident.subject", lang, fmt=fmt, words=words,
                                                        id=payload.get("work_order")))
    extra = {"format": "markdown"} if fmt == "markdown" else {}
    return {"subject": message.subject if fmt == "sms" else subject, "body": message.body,
            "payload": {**payload, **extra}}


async def notify_report(
    conn: AsyncConnection[Any],
    *,
    channel: str,
    target: str,
    community: str | None,
    subject: str,
    body: str,
    payload: dict[str, Any],
    dedup_key: str,
    now: datetime,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> int | None:
    """One email or messenger notification of a manager report, in the caller's transaction, with
    its files (``(filename, content type, bytes)``, table ``notification_attachments``, which the
    sender attaches to an email). None when ``dedup_key`` was already queued — the report of one
    period goes to one recipient once."""
    found = await _insert(conn, channel=channel, event="manager_report", now=now, state="pending", target=target,
                          community=community, subject=subject, body=body, payload=payload, dedup_key=dedup_key)
    if found is None:
        return None
    for filename, content_type, data in attachments:
        await conn.execute("INSERT INTO notification_attachments (notification_id, filename, content_type, data) "
                           "VALUES (%s, %s, %s, %s)", (found, filename, content_type, data))
    await conn.execute("SELECT pg_notify(%s, '')", (OUTBOX_CHANNEL,))
    return found
