"""Alarm-born work orders in each reader's language (issue 18), in a real headless Chromium
against the real app and PostgreSQL: the butler's inbox, the dispatcher's view and the
resident's phone page show the order's Chinese title to a Chinese reader (the default) and the
English one to an English reader; the butler's own notification is in their account's language.

Two orders: one from an edge alarm whose rule has no shipped title (its ``message_zh`` label is
the Chinese), one from the gateway-offline watchdog (a cloud-born alarm)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.alarms.offline import offline_event
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Inhibition, default_policy
from guanjia.core.clock import to_ms
from tests.support.browser import BROWSER_MARKS, login, shot
from tests.support.webapp import Login, MakeUser
from tests.support.workorders import add_butler

try:
    from playwright.async_api import Browser, expect
except ImportError:  # pragma: no cover - dev extra not installed
    expect = None  # type: ignore[assignment]

pytestmark = BROWSER_MARKS

TITLES = {"zh": ["pump-7：地下室积水", "gw-7：网关报告离线（遗嘱消息）"],
          "en": ["pump-7: water in the basement", "gw-7: gateway reported offline (last will)"]}


@pytest.fixture
async def orders(pool: AsyncConnectionPool[Any], make_user: MakeUser) -> dict[str, Any]:
    """Community cL: a butler with an English account, a resident who reported the leak, an engineer."""
    butler, resident = await make_user(Role.butler, "cL"), await make_user(Role.resident, "cL")
    engineer = await make_user(Role.engineer, "cL")
    policy = default_policy().model_copy(update={"inhibition": Inhibition(enabled=False)})
    now = dt.datetime.now(dt.UTC)
    leak = AlarmEvent(community="cL", device="pump-7", rule="site-basement-leak", state="raise", ts=to_ms(now),
                      severity="major", message="pump-7: water in the basement", work_order=True, gateway="gw-7",
                      device_kind="pump", labels={"message_zh": "pump-7：地下室积水"})
    offline = offline_event("cL", "gw-7", "raise", now, "gateway reported offline (last will)",
                            "网关报告离线（遗嘱消息）")
    async with pool.connection() as conn:
        butler_id = await add_butler(conn, "陈师傅", community="cL", skills=("water", "electrical"))
        await conn.execute("UPDATE butlers SET user_id = %s WHERE id = %s", (butler.user.id, butler_id))
        await conn.execute("UPDATE users SET lang = 'en' WHERE id = %s", (butler.user.id,))
        ids = [(await apply_event(conn, policy, event, now)).work_order_id for event in (leak, offline)]
        await conn.execute("UPDATE work_orders SET reporter_user_id = %s WHERE id = %s", (resident.user.id, ids[0]))
        cur = await conn.execute("SELECT subject FROM notifications WHERE channel = 'inbox' AND butler_id = %s"
                                 " ORDER BY id", (butler_id,))
        subjects = [row[0] for row in await cur.fetchall()]
    return {"ids": ids, "butler": butler, "resident": resident, "engineer": engineer, "subjects": subjects}


async def test_the_butlers_notification_is_in_their_accounts_language(orders: dict[str, Any]) -> None:
    assert len(orders["subjects"]) == 2
    for subject, title in zip(orders["subjects"], TITLES["en"], strict=True):
        assert title in subject
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in subject), subject


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_inbox_dispatcher_and_resident_pages_show_the_readers_title(
        live_server: str, chromium: Browser, orders: dict[str, Any], lang: str) -> None:
    ids, titles = orders["ids"], TITLES[lang]
    who: Login
    for who in (orders["butler"], orders["engineer"]):
        page = await login(chromium, live_server, who)
        await page.goto(f"{live_server}/inbox?lang={lang}")
        for wo_id, title in zip(ids, titles, strict=True):
            await expect(page.locator(f"#wo-{wo_id} .title")).to_have_text(title)
        await shot(page, f"inbox-bilingual-{who.user.role.value}-{lang}")
        await page.context.close()
    page = await login(chromium, live_server, orders["resident"], mobile=True, width=390, height=844)
    await page.goto(f"{live_server}/resident?lang={lang}")
    await expect(page.locator(f"#wo-{ids[0]} .title")).to_have_text(titles[0])
    await shot(page, f"resident-bilingual-{lang}")
    await page.context.close()
