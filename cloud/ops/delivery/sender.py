"""Deliver the notification outbox: webhooks, email, messengers, SMS — each attempt logged, failures
retried with capped exponential backoff, and a notification that still fails after
``max_attempts`` is marked ``failed`` and raises a ``notification_failed`` alarm of its own (so a
dead SMTP relay or a broken webhook is itself something staff see and fix).

Claiming: rows are leased (``next_attempt_at`` pushed ``LEASE`` ahead under ``FOR UPDATE SKIP
LOCKED``) and delivered *outside* the claiming transaction, so a slow receiver never holds locks,
and several sender processes split the work. A sender that dies mid-delivery leaves the lease to
expire and the row is retried: delivery is at-least-once; receivers de-duplicate on
``X-Guanjia-Delivery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
import orjson
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.delivery import webhook
from cloud.ops.delivery.email import SmtpConfig, send_email
from cloud.ops.delivery.messenger import send_messenger
from cloud.ops.delivery.robots import RobotEndpoints, send_robot
from cloud.ops.delivery.sms import SmsConfig, send_sms
from cloud.ops.delivery.voice import VoiceConfig, place_call
from cloud.ops.model.alarms import AlarmEvent, zh_label
from cloud.ops.model.errors import InvalidRequest
from cloud.ops.model.policy import Policy
from cloud.ops.notify.channels import RobotChannel, parse_channel
from cloud.ops.notify.listen import listen_forever
from cloud.ops.notify.outbox import OUTBOX_CHANNEL
from guanjia.core.clock import Clock, to_ms

log = logging.getLogger(__name__)

LEASE: Final = timedelta(seconds=60)


@dataclass(slots=True)
class RetryPolicy:
    max_attempts: int = 6
    initial: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=10)

    def delay(self, attempts: int) -> timedelta:
        """Deterministic capped exponential delay after ``attempts`` failures (5s, 10s, 20s … 10min)."""
        delay: timedelta = self.initial * (2 ** max(0, attempts - 1))
        return min(self.cap, delay)


@dataclass(slots=True)
class Delivery:
    ok: bool
    status: int | None = None
    error: str | None = None
    permanent: bool = False
    skipped: bool = False
    """not attempted on purpose (a voice call no longer needed): recorded, never retried, no alarm"""


class NotificationSender:
    """Cloud-service component and a directly usable ``run_once`` for tests and benches."""

    name = "notification-sender"

    def __init__(self, policy: Policy, *, smtp: SmtpConfig | None = None, sms: SmsConfig | None = None,
                 voice: VoiceConfig | None = None, robots: RobotEndpoints | None = None, clock: Clock,
                 retry: RetryPolicy | None = None, batch: int = 50, concurrency: int = 8,
                 poll_interval: float = 2.0, http_timeout: float = 10.0) -> None:
        self.policy = policy
        self.smtp = smtp
        self.sms = sms
        self.voice = voice
        self.robots = robots or RobotEndpoints()
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.batch = batch
        self.poll_interval = poll_interval
        self.http_timeout = http_timeout
        self._limit = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self.sent = 0
        self.failed = 0
        self.retried = 0

    def wake(self, *_: object) -> None:
        self._wake.set()

    async def _claim(self, conn: AsyncConnection[Any], now: datetime) -> list[dict[str, Any]]:
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                """UPDATE notifications SET next_attempt_at = %s
                   WHERE id IN (SELECT id FROM notifications
                                WHERE state IN ('pending', 'retrying') AND next_attempt_at <= %s
                                ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED)
                   RETURNING *""",
                (now + LEASE, now, self.batch),
            )
            return await cur.fetchall()

    async def _deliver(self, conn: AsyncConnection[Any], row: dict[str, Any]) -> Delivery:
        channel = row["channel"]
        if channel == "webhook":
            async with conn.transaction():  # never idle in a transaction during the HTTP call
                cur = await conn.execute("SELECT url, secret FROM webhook_endpoints WHERE id = %s AND active",
                                         (row["payload"].get("endpoint"),))
                endpoint = await cur.fetchone()
            if endpoint is None:
                return Delivery(False, error="webhook endpoint removed or inactive", permanent=True)
            assert self._client is not None
            body = orjson.dumps(row["payload"].get("body", {}))
            out = await webhook.post(self._client, endpoint[0], endpoint[1], body, row["event"], row["id"],
                                     self.clock.now(), self.http_timeout)
            return Delivery(out.ok, out.status, out.error, out.permanent)
        if channel == "email":
            if self.smtp is None:
                return Delivery(False, error="no SMTP server configured (GUANJIA_SMTP_URL)")
            async with conn.transaction():
                cur = await conn.execute("SELECT filename, content_type, data FROM notification_attachments "
                                         "WHERE notification_id = %s ORDER BY filename", (row["id"],))
                files = tuple((str(f), str(t), bytes(d)) for f, t, d in await cur.fetchall())
            error = await send_email(self.smtp, row["target"], row["subject"], row["body"], files)
            return Delivery(error is None, error=error)
        if channel == "messenger":
            try:
                parsed = parse_channel(row["target"])
            except InvalidRequest as exc:  # stored before URLs were checked on entry
                return Delivery(False, error=str(exc)[:500], permanent=True)
            if isinstance(parsed, RobotChannel):
                assert self._client is not None
                out = await send_robot(self._client, parsed, self.robots, row["subject"], row["body"],
                                       self.clock.now(), self.http_timeout,
                                       markdown=(row["payload"] or {}).get("format") == "markdown")
                return Delivery(out.ok, out.status, out.error, out.permanent)
            error = await send_messenger(parsed.url, row["subject"], row["body"])
            return Delivery(error is None, error=error)
        if channel == "sms":
            if self.sms is None:
                return Delivery(False, error="no SMS provider configured (GUANJIA_SMS_URL)")
            assert self._client is not None
            out = await send_sms(self._client, self.sms, row["target"], row["subject"], self.clock.now())
            return Delivery(out.ok, out.status, out.error, out.permanent)
        if channel == "voice":
            return await self._call(conn, row)
        return Delivery(True)  # inbox rows are delivered by NOTIFY at commit

    async def _call(self, conn: AsyncConnection[Any], row: dict[str, Any]) -> Delivery:
        """A P0's voice call, placed only while its order still waits to be accepted. Skipped (not
        failed: no alarm) when the order was taken meanwhile or no provider is configured — the voice
        call is the optional last resort after the inbox and the SMS, which did go out."""
        if row["work_order_id"] is not None:
            async with conn.transaction():
                cur = await conn.execute("SELECT state FROM work_orders WHERE id = %s", (row["work_order_id"],))
                found = await cur.fetchone()
            if found is None or found[0] not in ("new", "assigned", "rejected"):
                return Delivery(False, error=f"skipped: the order is {found[0] if found else 'gone'}", skipped=True)
        if self.voice is None:
            return Delivery(False, error="skipped: no voice provider configured (GUANJIA_VOICE_URL)", skipped=True)
        assert self._client is not None
        out = await place_call(self._client, self.voice, row["target"], row["subject"], str(row["id"]),
                               self.clock.now())
        return Delivery(out.ok, out.status, out.error, out.permanent)

    async def _finish(self, conn: AsyncConnection[Any], row: dict[str, Any], result: Delivery, started: float,
                      now: datetime) -> None:
        attempts = row["attempts"] + 1
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO notification_attempts (notification_id, at, ok, status, error, duration_ms)
                   VALUES (%s, %s, %s, %s, %s, %s)""",
                (row["id"], now, result.ok, result.status, result.error, (time.perf_counter() - started) * 1000),
            )
            if result.ok:
                self.sent += 1
                await conn.execute(
                    "UPDATE notifications SET state = 'sent', attempts = %s, sent_at = %s, last_error = NULL, "
                    "next_attempt_at = NULL WHERE id = %s", (attempts, now, row["id"]))
                return
            if result.skipped:
                await conn.execute(
                    "UPDATE notifications SET state = 'skipped', attempts = %s, last_error = %s, "
                    "next_attempt_at = NULL WHERE id = %s", (attempts, result.error, row["id"]))
                return
            if result.permanent or attempts >= self.retry.max_attempts:
                self.failed += 1
                await conn.execute(
                    "UPDATE notifications SET state = 'failed', attempts = %s, last_error = %s, next_attempt_at = NULL "
                    "WHERE id = %s", (attempts, result.error, row["id"]))
                log.warning("notification %s (%s) failed after %s attempts: %s",
                            row["id"], row["channel"], attempts, result.error)
                await apply_event(conn, self.policy, AlarmEvent(
                    community=row["community"] or "-", device=f"notify-{row['channel']}", rule="notification_failed",
                    state="raise", ts=to_ms(now), severity="major", source="system", device_kind="notifier",
                    message=f"{row['channel']} notification {row['id']} failed: {result.error}"[:500],
                    labels=zh_label(f"{row['channel']} 通知 {row['id']} 发送失败：{result.error}"[:500]),
                ), now)
                return
            self.retried += 1
            await conn.execute(
                "UPDATE notifications SET state = 'retrying', attempts = %s, last_error = %s, next_attempt_at = %s "
                "WHERE id = %s", (attempts, result.error, now + self.retry.delay(attempts), row["id"]))

    async def _one(self, conn_factory: Any, row: dict[str, Any]) -> None:
        async with self._limit:
            started = time.perf_counter()
            async with conn_factory() as conn:
                try:
                    result = await self._deliver(conn, row)
                except Exception as exc:  # an adapter bug must not kill the sender; the row is retried
                    log.exception("notification %s: delivery raised", row["id"])
                    result = Delivery(False, error=f"{type(exc).__name__}: {exc}"[:500])
                await self._finish(conn, row, result, started, self.clock.now())

    async def _in_order(self, conn_factory: Any, queue: list[dict[str, Any]]) -> None:
        for row in queue:
            await self._one(conn_factory, row)

    async def run_once(self, conn_factory: Any) -> int:
        """Claim and deliver one batch; ``conn_factory()`` is an async context manager yielding a
        connection (``pool.connection`` in the service, a small helper in tests)."""
        async with conn_factory() as conn:
            rows = await self._claim(conn, self.clock.now())
        if not rows:
            return 0
        own_client = self._client is None
        if own_client:
            self._client = httpx.AsyncClient()
        try:
            async with asyncio.TaskGroup() as tg:
                for queue in _per_recipient(rows):
                    tg.create_task(self._in_order(conn_factory, queue))
        finally:
            if own_client and self._client is not None:
                await self._client.aclose()
                self._client = None
        return len(rows)

    async def run(self, ctx: Any) -> None:
        ctx.metrics.gauge("guanjia_notifications_sent", "notifications delivered by this process",
                          lambda: float(self.sent))
        ctx.metrics.gauge("guanjia_notifications_failed", "notifications given up", lambda: float(self.failed))
        ctx.metrics.gauge("guanjia_notifications_retried", "notification attempts retried",
                          lambda: float(self.retried))
        async with httpx.AsyncClient() as client, asyncio.TaskGroup() as tg:
            self._client = client
            tg.create_task(listen_forever(ctx.database_url, [OUTBOX_CHANNEL], lambda _c, _p: self.wake(), self.wake))
            while True:
                self._wake.clear()
                try:
                    async with asyncio.timeout(120):
                        count = await self.run_once(ctx.pool.connection)
                except (psycopg.Error, TimeoutError) as exc:
                    log.warning("notification sender batch failed: %s", exc)
                    count = 0
                if count >= self.batch:
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await self._wake.wait()


def _per_recipient(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The claimed rows, one queue per recipient (channel and target; a webhook's endpoint) in the
    order they were written. Why: the queues go out side by side, but one person's messages go one
    after the other — a resident reads "received" before "assigned", even when both were written
    in the same instant and a parallel send would let the second overtake the first."""
    queues: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: int(r["id"])):
        target = row["target"] if row["channel"] != "webhook" else str((row["payload"] or {}).get("endpoint"))
        queues.setdefault((str(row["channel"]), str(target)), []).append(row)
    return list(queues.values())
