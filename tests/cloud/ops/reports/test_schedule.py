"""Scheduled report delivery on a pinned clock across a month end: nothing before the period
closes (local time), one email with the PDF and one WeCom robot message with the summary and link
right after, never a second time — not on the next pass, not after a restart. Real SMTP (aiosmtpd)
and the local robot stand-in check what arrives."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.header import decode_header, make_header
from typing import Any
from zoneinfo import ZoneInfo

from cloud.ops.delivery.email import SmtpConfig
from cloud.ops.delivery.robots import RobotEndpoints
from cloud.ops.delivery.sender import NotificationSender
from cloud.ops.model.policy import Policy
from cloud.ops.reports import repo
from cloud.ops.reports.schedule import ReportDelivery, last_closed, summary, upcoming
from cloud.ops.reports.tariffs import shipped
from guanjia.core.clock import ManualClock
from tests.cloud.ops.delivery.test_notify import factory
from tests.support.receivers import SmtpReceiver
from tests.support.vendors import VendorReceiver

SHANGHAI = ZoneInfo("Asia/Shanghai")
KEY = "693a91f6-7aaa-4bc4-97a0-0ec2afa5aaa1"


def local(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2027, month, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)



def _sub(period: str, created: datetime, last: date | None = None, active: bool = True) -> repo.Subscription:
    return repo.Subscription(1, "ca", period, ["a@example.com"], [], "zh", active, last, created)


def test_upcoming_period_is_what_the_sender_will_queue_next() -> None:
    """What the settings page shows as "next": the closed period the sender has not queued yet
    (due on its next pass), else the one after it, closing at local midnight."""
    now = local(2, 10, 9)  # Wed 10 Feb 2027, 09:00 in Shanghai
    zone = ["Asia/Shanghai"]
    # made in January, nothing sent: January has closed and goes on the next pass
    assert upcoming(_sub("month", local(1, 5, 0)), now, zone) == (date(2027, 1, 1), local(2, 1, 0), "Asia/Shanghai")
    # January sent: February, after 1 March 00:00 local
    assert upcoming(_sub("month", local(1, 5, 0), date(2027, 1, 1)), now, zone) == (
        date(2027, 2, 1), local(3, 1, 0), "Asia/Shanghai")
    # made today: January ended before it, so February is next; a week from Monday 8 Feb
    sh = "Asia/Shanghai"
    assert upcoming(_sub("month", local(2, 10, 8)), now, zone) == (date(2027, 2, 1), local(3, 1, 0), sh)
    assert upcoming(_sub("week", local(2, 10, 8)), now, zone) == (date(2027, 2, 8), local(2, 15, 0), sh)
    assert upcoming(_sub("day", local(2, 10, 8), date(2027, 2, 9)), now, zone) == (date(2027, 2, 10),
                                                                                       local(2, 11, 0), sh)
    # company: the period closes at the last midnight of every zone
    both = ["Asia/Shanghai", "Europe/London"]
    nxt = upcoming(_sub("month", local(2, 10, 8)), now, both)
    assert nxt == (date(2027, 2, 1), datetime(2027, 3, 1, tzinfo=UTC), "Europe/London")
    assert upcoming(_sub("month", local(1, 5, 0), active=False), now, zone) is None

def test_last_closed_period_is_local() -> None:
    # 31 Jan 16:30 UTC is 1 Feb 00:30 in Shanghai: January has closed there, not in London
    now = datetime(2027, 1, 31, 16, 30, tzinfo=UTC)
    assert last_closed("month", now, ["Asia/Shanghai"])[0] == date(2027, 1, 1)
    assert last_closed("month", now, ["Europe/London"])[0] == date(2026, 12, 1)
    assert last_closed("month", now, ["Asia/Shanghai", "Europe/London"])[0] == date(2026, 12, 1)
    assert last_closed("week", now, ["Asia/Shanghai"])[0] == date(2027, 1, 25)  # Mon 25 – Sun 31 Jan
    assert last_closed("day", now, ["Asia/Shanghai"])[0] == date(2027, 1, 31)


async def test_reports_go_out_once_after_the_month_closes(full: Any, wo_db: str, clock: ManualClock, policy: Policy,
                                                          smtp_receiver: SmtpReceiver,
                                                          vendor_receiver: VendorReceiver) -> None:
    conn, _, _ = full
    vendor_receiver.wecom_keys.add(KEY)
    await repo.add_subscription(conn, "cp", "month", ["boss@example.com"], [f"wecom://{KEY}"], "zh", local(1, 20, 9))
    await repo.add_subscription(conn, None, "day", ["hq@example.com"], [], "en", local(1, 31, 12))
    clock.set(local(1, 31, 23, 59, 59))
    delivery = ReportDelivery(shipped(), clock, "https://guanjia.example.com")
    # 31 Jan (a day closed before the subscription) is not sent; 30 Jan closed before it too
    assert await delivery.run_once(conn) == []

    clock.set(local(2, 1, 0, 0, 30))  # 30 s after midnight in Shanghai
    done = await delivery.run_once(conn)
    assert sorted(first for _, first in done) == [date(2027, 1, 1), date(2027, 1, 31)]
    assert await delivery.run_once(conn) == []  # the next pass
    assert await ReportDelivery(shipped(), clock).run_once(conn) == []  # a restarted service

    smtp = SmtpConfig("127.0.0.1", smtp_receiver.port, "gj@example.com")
    sender = NotificationSender(policy, clock=clock, smtp=smtp, robots=RobotEndpoints(wecom=vendor_receiver.url))
    assert await sender.run_once(factory(wo_db)) == 3
    assert vendor_receiver.refused == []
    by_to = {m["To"]: m for m in smtp_receiver.messages}
    assert set(by_to) == {"boss@example.com", "hq@example.com"}
    boss = by_to["boss@example.com"]
    assert str(make_header(decode_header(boss["Subject"]))) == "cp 月报 2027-01-01 – 2027-01-31"
    (attachment,) = [p for p in boss.walk() if p.get_filename()]
    assert attachment.get_filename() == "cp-month-2027-01-01.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert bytes(attachment.get_payload(decode=True)).startswith(b"%PDF")
    hq = by_to["hq@example.com"]
    assert str(make_header(decode_header(hq["Subject"]))) == "company daily report 2027-01-31 – 2027-01-31"
    ((vendor, data),) = vendor_receiver.accepted
    text = data["text"]["content"]
    assert vendor == "wecom"
    assert "cp 月报" in text
    assert "工单：新建 0" in text
    assert "https://guanjia.example.com/reports?community=cp&period=month&start=2027-01-01" in text

    clock.set(local(2, 2, 0, 1))  # the next day closes: the daily company report again, the monthly not
    assert [first for _, first in await delivery.run_once(conn)] == [date(2027, 2, 1)]
    cur = await conn.execute("SELECT count(*) FROM notifications WHERE event = 'manager_report'")
    assert (await cur.fetchone() or (0,))[0] == 4


def test_summary_in_english_without_link() -> None:
    report = {"community": "cp", "period": "week", "start": "2027-01-25", "end": "2027-01-31",
              "sla": {"opened": 2, "resolved": 1, "resolve_ratio": 0.5, "mtta_min": 12.0, "mttr_min": None},
              "maintenance": [{"due": 2, "on_time": 1}], "inspections": [{"expected": 4, "covered": 3}],
              "energy_total": {"kwh": "24.000", "cost": "15.36", "savings_cost": "3.85",
                               "target_deviation_pct": "-5.0"}}
    subject, text = summary(report, "en", None)
    assert subject == "cp weekly report 2027-01-25 – 2027-01-31"
    assert "resolved within SLA 50.0%" in text
    assert "1/2 on time" in text
    assert "saved 3.85 CNY" in text
    assert "target -5.0%" in text
    assert "http" not in text
