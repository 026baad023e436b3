"""The butler admin (:mod:`cloud.ops.routing.staff`): messenger URLs checked and stored in their
canonical form when a butler is added, from the API, the pages and the command line alike."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from pydantic import ValidationError

from cloud.ops.routing.staff import NewButler, create_butler

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


async def test_butler_admin_checks_and_stores_canonical(wo_db: str) -> None:
    with pytest.raises(ValidationError, match="wxwork"):
        NewButler(community="c1", name="陈师傅", skills=["general"], messengers=[f"wxwork://{KEY}"])
    async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as conn:
        await conn.execute("INSERT INTO communities (code) VALUES ('c1') ON CONFLICT DO NOTHING")
        butler = await create_butler(conn, NewButler(
            community="c1", name="陈师傅", skills=["general"],
            messengers=[f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"]),
            actor="test", now=datetime(2026, 12, 7, tzinfo=UTC))
        cur = await conn.execute("SELECT messengers FROM butlers WHERE id = %s", (butler.id,))
        assert await cur.fetchone() == ([f"wecom://{KEY}"],)
