"""Each web account's chosen channel: where the steps of a resident's order (or a butler's work)
go besides the in-app inbox — SMS, email, a messenger (group robot or apprise URL), or nothing
more (``inapp``).

Checked when set, not when the first message fails: a phone must be a mainland mobile number
(what the SMS provider accepts), an address must look like one, a messenger URL goes through the
same parser the butler admin and the sender use (:func:`cloud.ops.notify.channels.parse_channel`),
and the canonical form is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from psycopg import AsyncConnection

from cloud.ops.model.errors import InvalidRequest, NotFound
from cloud.ops.notify.channels import parse_channel

ChannelChoice = Literal["inapp", "sms", "email", "messenger"]
CHOICES: Final[tuple[str, ...]] = get_args(ChannelChoice)

_MAINLAND: Final = re.compile(r"1[3-9]\d{9}")
_EMAIL: Final = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")


@dataclass(frozen=True, slots=True)
class Preference:
    channel: str
    target: str | None


def normalise_phone(phone: str) -> str | None:
    """A mainland mobile number as the SMS provider wants it (11 digits), or None."""
    digits = re.sub(r"[\s\-()]", "", phone).removeprefix("+86").removeprefix("0086")
    return digits if _MAINLAND.fullmatch(digits) else None


def validate(channel: str, target: str | None) -> Preference:
    """The canonical preference, or :class:`InvalidRequest` naming the field and what is valid."""
    if channel not in CHOICES:
        raise InvalidRequest(f"channel: {channel!r} is not one of {', '.join(CHOICES)}")
    value = (target or "").strip()
    if channel == "inapp":
        return Preference("inapp", None)
    if not value:
        raise InvalidRequest(f"target: channel {channel} needs a target (a phone, an address or a messenger URL)")
    if channel == "sms":
        phone = normalise_phone(value)
        if phone is None:
            raise InvalidRequest("target: not a mainland mobile number (11 digits starting 13-19, +86 allowed)")
        return Preference("sms", phone)
    if channel == "email":
        if not _EMAIL.fullmatch(value):
            raise InvalidRequest("target: not an email address (name@example.com)")
        return Preference("email", value)
    return Preference("messenger", parse_channel(value).url)


async def get(conn: AsyncConnection[Any], user_id: int) -> Preference:
    cur = await conn.execute("SELECT notify_channel, notify_target FROM users WHERE id = %s", (user_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"user {user_id}")
    return Preference(row[0], row[1])


async def choose(conn: AsyncConnection[Any], user_id: int, channel: str, target: str | None) -> Preference:
    """Validate and store ``user_id``'s channel."""
    preference = validate(channel, target)
    cur = await conn.execute("UPDATE users SET notify_channel = %s, notify_target = %s WHERE id = %s RETURNING 1",
                             (preference.channel, preference.target, user_id))
    if await cur.fetchone() is None:
        raise NotFound(f"user {user_id}")
    return preference
