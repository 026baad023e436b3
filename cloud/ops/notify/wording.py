"""A community's own wording of notification messages (table ``notify_wording``, migration 646).

An admin rewords one message (a code of :data:`cloud.ops.notify.templates.TEXTS`) in one language,
for one channel format (``sms``, ``email``, ``markdown`` for the group robots, ``text`` for other
messengers) or for all of them (``*``); a channel's own override wins over ``*``, and without one
the shipped sentence is sent. The text is checked when it is written, not when the first message
fails: only the placeholders the shipped sentence has (:func:`cloud.ops.notify.templates.check_template`),
so an unknown ``{phone}`` is a 422 naming the placeholders that exist. Every change is an
``admin_audit`` row (``wording.updated`` / ``wording.reset``) in the same transaction.

The outbox loads a community's wording once per notification (one indexed query) and renders the
channel copies with it; the in-app inbox keeps the shipped sentence, which the resident's page
renders in the reader's language at read time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cloud.db import audit
from cloud.ops.notify.templates import TEXTS, Channel, Lang, Wording, check_template


class WordingIn(BaseModel):
    """One override; ``template`` null (or empty) goes back to the shipped sentence."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=64, description="a message code, e.g. resident.assigned")
    lang: Lang = "zh"
    channel: Channel = Field("*", description="sms | email | markdown (robots) | text (other messengers) | *")
    template: str | None = Field(None, max_length=500, description="the words, with the message's {placeholders}")

    @field_validator("template")
    @classmethod
    def _placeholders(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = (value or "").strip() or None
        code = info.data.get("code")
        if value is not None and isinstance(code, str):
            check_template(code, value)
        return value

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        check_template(value, "")  # a message that can be reworded at all
        return value


class WordingRow(BaseModel):
    """An override as the API returns it and the policy page shows it, beside the shipped words."""

    code: str
    lang: str
    channel: str
    template: str
    shipped: str
    updated_at: dt.datetime
    updated_by: str


async def rows(conn: AsyncConnection[Any], community: str) -> list[WordingRow]:
    async with conn.cursor(row_factory=class_row(WordingRow)) as cur:
        await cur.execute(
            """SELECT code, lang, channel, template, '' AS shipped, updated_at, updated_by FROM notify_wording
               WHERE community = %s ORDER BY code, lang, channel""", (community,))
        found = await cur.fetchall()
    return [row.model_copy(update={"shipped": TEXTS[row.code][1 if row.lang == "en" else 0]})
            for row in found if row.code in TEXTS]


async def load(conn: AsyncConnection[Any], community: str | None) -> Wording:
    """The community's words for the sender (empty: the shipped sentences)."""
    if not community:
        return Wording()
    cur = await conn.execute("SELECT code, lang, channel, template FROM notify_wording WHERE community = %s",
                             (community,))
    return Wording({(code, lang, channel): template for code, lang, channel, template in await cur.fetchall()})


async def save(conn: AsyncConnection[Any], community: str, item: WordingIn, *, actor: str,
               now: dt.datetime) -> list[WordingRow]:
    """Store (or, with no template, remove) one override, audited; return the community's list."""
    if item.template is None:
        await conn.execute("DELETE FROM notify_wording WHERE community = %s AND code = %s AND lang = %s "
                           "AND channel = %s", (community, item.code, item.lang, item.channel))
    else:
        await conn.execute(
            """INSERT INTO notify_wording (community, code, lang, channel, template, updated_at, updated_by)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (community, code, lang, channel) DO UPDATE SET template = excluded.template,
                   updated_at = excluded.updated_at, updated_by = excluded.updated_by""",
            (community, item.code, item.lang, item.channel, item.template, now, actor))
    action = "wording.reset" if item.template is None else "wording.updated"
    await audit.record(conn, at=now, actor=actor, action=action, community=community,
                       target=f"wording {item.code} {item.lang} {item.channel}", detail={"template": item.template})
    return await rows(conn, community)
