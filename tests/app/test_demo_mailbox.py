"""The demo's resident channel, wired as ``guanjia demo`` wires it (without the rest of the demo):
the mailbox runs as a supervised child process, the demo resident 陈女士 (seeded by the demo's own
seed) has it as her channel, and each step of her report — received, assigned with the butler's
name, on the way, on site, resolved — arrives there over SMTP, in Chinese, with the community's
local time, through the cloud's real sender and outbox."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cloud.auth.roles import Role
from cloud.auth.seed import seed_demo_users
from cloud.ops.delivery.email import SmtpConfig
from cloud.ops.delivery.sender import NotificationSender
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import InvalidRequest
from cloud.ops.model.policy import Policy
from cloud.ops.notify import preferences
from cloud.ops.workorders import repo
from cloud.ops.workorders.reports import Report, submit_report
from guanjia.app import demo_mailbox
from guanjia.app.procs import Supervisor
from guanjia.core.clock import ManualClock
from guanjia.core.ports import free_port


@contextlib.asynccontextmanager
async def _connect(url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        yield c


async def test_demo_resident_hears_every_step_at_the_mailbox(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                             clock: ManualClock, policy: Policy,
                                                             tmp_path: Path) -> None:
    port = free_port()
    folder = tmp_path / "mailbox"
    supervisor = Supervisor(tmp_path / "logs")
    with supervisor.running():
        child = demo_mailbox.start(supervisor, port, folder)
        logins = await seed_demo_users(conn, "c1")
        chen = next(x for x in logins if x.role is Role.resident)
        assert chen.display_name == "陈女士"
        chosen = await demo_mailbox.point_resident(conn, chen.user_id)
        assert chosen == preferences.Preference("email", demo_mailbox.RESIDENT_ADDRESS)

        wo, _ = await submit_report(conn, policy, Report(community="c1", text="3号楼电梯异响",
                                                         reporter_user_id=chen.user_id, reporter_phone="13812341234"),
                                    clock.now(), Actor("user", chen.user_id, chen.display_name, "resident"))
        assert wo["assignee_id"] is not None  # routed to one of the demo's butlers
        cur = await conn.execute("SELECT name FROM butlers WHERE id = %s", (wo["assignee_id"],))
        butler = (await cur.fetchone() or ("",))[0]
        for action in ("accept", "depart", "arrive", "resolve"):
            clock.advance(timedelta(minutes=3))
            await repo.transition(conn, policy, wo["id"], action, Actor.butler(wo["assignee_id"], butler), clock.now())

        sender = NotificationSender(policy, clock=clock, smtp=SmtpConfig.parse(demo_mailbox.smtp_url(port)))
        await sender.run_once(lambda: _connect(wo_db))
        assert child.alive
    text = demo_mailbox.mailbox_file(folder).read_text(encoding="utf-8")
    n = wo["id"]
    steps = (f"已收到您的报修：工单 #{n}（3号楼电梯异响）。", f"工单 #{n} 已派给 {butler}。",
             f"{butler} 正在赶来（#{n}）。", f"{butler} 已到达现场（#{n}）。", f"工单 #{n} 已处理完成，请您评价。")
    for step in steps:
        assert step in text, (step, text)
    # one batch of five, yet in the order they happened (one recipient's messages go one by one)
    assert [text.index(step) for step in steps] == sorted(text.index(step) for step in steps)
    assert text.count("━━ ") == 5  # one message per step, each with its subject line
    assert "01-05 10:12" in text  # the resolve step, 02:12 UTC in the community's Asia/Shanghai
    assert "13812341234" not in text  # her own phone is not repeated back to her
    cur = await conn.execute("SELECT count(*) FROM notifications WHERE channel = 'email' AND state = 'sent' "
                             "AND target = %s", (demo_mailbox.RESIDENT_ADDRESS,))
    assert await cur.fetchone() == (5,)


def test_the_mailbox_address_is_a_valid_resident_choice() -> None:
    assert preferences.validate("email", demo_mailbox.RESIDENT_ADDRESS).target == demo_mailbox.RESIDENT_ADDRESS
    assert demo_mailbox.smtp_url(2525).startswith("smtp://127.0.0.1:2525?from=")
    with pytest.raises(InvalidRequest):
        preferences.validate("email", "resident@localhost")  # why the demo address has a real-looking domain
