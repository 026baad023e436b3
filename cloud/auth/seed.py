"""Demo users, one per role, for ``guanjia demo`` (called by the demo with an open connection).

The passwords are fixed and printed by the demo: they exist only in demo databases. Seeding is
idempotent — running the demo twice resets the same accounts instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from cloud.auth.roles import Role
from cloud.auth.users import create_user, get_login, set_password, update_user


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    role: Role
    user_id: int
    display_name: str


def demo_accounts(community: str) -> list[tuple[str, str, Role, str, str]]:
    """(username, password, role, display name, language) of the demo accounts of ``community``."""
    return [
        ("admin", "admin-demo-pass", Role.admin, "平台管理员", "zh"),
        ("engineer", "engineer-demo-pass", Role.engineer, "王工程师", "zh"),
        ("butler", "butler-demo-pass", Role.butler, "李管家", "zh"),
        ("butler2", "butler2-demo-pass", Role.butler, "张管家", "zh"),
        ("resident", "resident-demo-pass", Role.resident, "陈女士", "zh"),
        ("volunteer", "volunteer-demo-pass", Role.butler, "志愿者小萧", "zh"),
        ("contractor", "contractor-demo-pass", Role.contractor, "迅达维保 赵工", "zh"),
    ]


async def seed_demo_users(conn: AsyncConnection[Any], community: str, *,
                          link_butlers: bool = True) -> list[DemoLogin]:
    """Create (or reset) the demo accounts in ``community``; return their logins.

    With ``link_butlers`` the butler accounts also get butler records, so the inbox works.
    The caller owns the transaction (commit after, or use an autocommit connection).
    """
    logins: list[DemoLogin] = []
    for username, password, role, display, lang in demo_accounts(community):
        found = await get_login(conn, username)
        if found is None:
            user = await create_user(conn, username, password, role, [community],
                                     display_name=display, lang=lang)
        else:
            existing = found[0]
            communities = sorted({*existing.communities, community})
            user = await update_user(conn, existing.id, role=role, communities=communities,
                                     display_name=display, lang=lang, disabled=False)
            await set_password(conn, user.id, password)
        logins.append(DemoLogin(username, password, role, user.id, display))
    if link_butlers:
        await _link_butlers(conn, community, [x for x in logins if x.role is Role.butler])
        await _link_contractors(conn, community, [x for x in logins if x.role is Role.contractor])
    return logins


async def _link_contractors(conn: AsyncConnection[Any], community: str, logins: list[DemoLogin]) -> None:
    """Give each demo contractor account a company (one demo lift contractor) and a field-staff
    record in the community (a butler record of that company: a plan can name it as assignee;
    routing picks it only for the kinds of work of a contract, see
    :mod:`cloud.ops.routing.contracts`). Idempotent like :func:`_link_butlers`."""
    cur = await conn.execute("SELECT to_regclass('contractors') IS NOT NULL")
    row = await cur.fetchone()
    if not (row and row[0]) or not logins:
        return
    cur = await conn.execute("SELECT id FROM contractors WHERE name = %s", (DEMO_CONTRACTOR,))
    found = await cur.fetchone()
    if found is None:
        cur = await conn.execute("INSERT INTO contractors (name, skills, created_at) VALUES (%s, %s, now()) "
                                 "RETURNING id", (DEMO_CONTRACTOR, ["elevator"]))
        found = await cur.fetchone()
    assert found is not None
    for i, login in enumerate(logins):
        await conn.execute("UPDATE users SET contractor_id = %s WHERE id = %s", (found[0], login.user_id))
        await conn.execute(
            """INSERT INTO butlers (user_id, name, phone, community, skills, kind, contractor_id)
               VALUES (%s, %s, %s, %s, %s, 'full_time', %s) ON CONFLICT (user_id) DO NOTHING""",
            (login.user_id, login.display_name, f"1390013{i:04d}", community, ["elevator"], found[0]))


DEMO_CONTRACTOR = "迅达电梯维保（演示）/ Demo lift contractor"


async def _link_butlers(conn: AsyncConnection[Any], community: str, butlers: list[DemoLogin]) -> None:
    """Give each demo butler account a butler record (the WORKORDERS part's ``butlers`` table),
    so routed work orders reach their inbox. All skills, full time, always on duty (no shifts).
    Idempotent: ``butlers.user_id`` is unique."""
    cur = await conn.execute("SELECT to_regclass('butlers') IS NOT NULL")
    row = await cur.fetchone()
    if not (row and row[0]):
        return
    for i, login in enumerate(butlers):
        # the "volunteer" account is a volunteer butler (志愿管家): routing never picks them; a
        # full-time butler hands them tasks from the inbox page (issue 18)
        await conn.execute(
            """INSERT INTO butlers (user_id, name, phone, community, skills, kind, star_level)
               VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (user_id) DO NOTHING""",
            (login.user_id, login.display_name, f"1380013{i:04d}", community,
             ["elevator", "water", "electrical", "access", "general"],
             "volunteer" if login.username == "volunteer" else "full_time", 4 - i % 2))
