"""The trail as people read it: names, not ``butler:1``; words in the reader's language, not
``report_linked``. One read model for the work-order API, the butler inbox page and the alarm
history (``/api/v1/alarms/{id}``).

Why here (``ops.workorders``) and not in ``cloud.queries``: the words live in
:mod:`cloud.ops.notify.templates`, above ``queries`` in the layers. The stored rows keep their
codes (``action``, ``actor``) for machines and audits; each entry adds ``action_text``,
``actor_name`` and, where the system wrote an English note from parameters (an escalation's
level and reason), a ``note`` rendered from those parameters. A resident's name is masked unless
the reader may see the resident's data (the same ``reveal_pii`` the order's detail uses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.ops.notify import templates
from cloud.ops.notify.masking import mask_name

_NUMERIC: Final = re.compile(r"\d{1,18}")


@dataclass(frozen=True, slots=True)
class TrailEntry:
    at: datetime
    action: str
    action_text: str
    from_state: str | None
    to_state: str | None
    to_state_text: str | None
    actor: str
    actor_name: str
    note: str
    lat: float | None
    lon: float | None
    severity: str | None
    data: dict[str, Any]


# names of the people behind ``butler:N`` / ``user:N`` labels, in the same statement as the rows
_NAMES: Final = """
    LEFT JOIN butlers b ON b.id = CASE WHEN t.actor ~ '^butler:[0-9]{1,18}$'
                                       THEN split_part(t.actor, ':', 2)::bigint END
    LEFT JOIN users u ON u.id = CASE WHEN t.actor ~ '^user:[0-9]{1,18}$'
                                     THEN split_part(t.actor, ':', 2)::bigint END
    LEFT JOIN butlers a ON a.id = CASE WHEN t.data->>'assignee_id' ~ '^[0-9]{1,18}$'
                                       THEN (t.data->>'assignee_id')::bigint END"""


def actor_name(label: str, row: dict[str, Any], lang: str | None, *, reveal_pii: bool) -> str:
    """The readable name of one trail actor label."""
    kind, _, rest = label.partition(":")
    if kind == "butler":
        return row.get("butler_name") or templates.text("actor.unknown", lang, id=rest)
    if kind == "user":
        name = row.get("user_name") or ""
        if row.get("user_role") == "resident":
            shown = name if reveal_pii else mask_name(name)
            return f"{templates.text('actor.resident', lang)} {shown}".strip()
        return name or templates.text("actor.unknown", lang, id=rest)
    if kind == "edge":
        return templates.text("actor.edge", lang, name=rest)
    if kind == "fleet":
        return templates.text("actor.fleet", lang)
    if kind == "system":
        who = "alarms" if rest.startswith("alarm:") else rest
        code = f"actor.system.{who}"
        return templates.text(code if templates.has(code) else "actor.system", lang)
    return label


def _note(row: dict[str, Any], lang: str | None) -> str:
    data = row.get("data") or {}
    if row["action"] == "escalated" and "level" in data:
        reason = templates.text(f"reason.{data.get('reason')}", lang)
        return templates.text("escalation.line", lang, level=data["level"], reason=reason)
    if str(row["actor"]).startswith("system:rating"):
        return ""  # "closed by the rating of user:5": the actor's name says it
    note = str(row.get("note") or "")
    if row.get("assignee_name") and row["action"] in ("assign", "reassign", "opened"):
        return " · ".join(x for x in (templates.text("trail.to", lang, name=row["assignee_name"]), note) if x)
    return note


def _entry(row: dict[str, Any], lang: str | None, reveal_pii: bool) -> TrailEntry:
    action = str(row["action"])
    code = f"trail.{action}"
    to_state = row.get("to_state")
    return TrailEntry(
        at=row["at"], action=action, action_text=templates.text(code, lang) if templates.has(code) else action,
        from_state=row.get("from_state"), to_state=to_state,
        to_state_text=templates.text(f"state.{to_state}", lang) if to_state else None,
        actor=str(row["actor"]), actor_name=actor_name(str(row["actor"]), row, lang, reveal_pii=reveal_pii),
        note=_note(row, lang), lat=row.get("lat"), lon=row.get("lon"), severity=row.get("severity"),
        data=row.get("data") or {})


async def work_order_trail(conn: AsyncConnection[Any], wo_id: int, lang: str | None, *,
                           reveal_pii: bool) -> list[TrailEntry]:
    """A work order's trail, oldest first, readable in ``lang``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"""SELECT t.*, NULL AS severity, b.name AS butler_name, a.name AS assignee_name,
                       coalesce(nullif(u.display_name, ''), u.username) AS user_name, u.role AS user_role
                  FROM work_order_trail t {_NAMES}
                 WHERE t.work_order_id = %s ORDER BY t.id""", (wo_id,))
        return [_entry(r, lang, reveal_pii) for r in await cur.fetchall()]


async def alarm_history(conn: AsyncConnection[Any], alarm_id: int, lang: str | None) -> list[TrailEntry]:
    """An alarm's trail, oldest first, readable in ``lang`` (staff only: names are shown)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"""SELECT t.*, NULL AS from_state, NULL AS to_state, NULL AS lat, NULL AS lon, b.name AS butler_name,
                       a.name AS assignee_name,
                       coalesce(nullif(u.display_name, ''), u.username) AS user_name, u.role AS user_role
                  FROM alarm_trail t {_NAMES}
                 WHERE t.alarm_id = %s ORDER BY t.id""", (alarm_id,))
        return [_entry(r, lang, True) for r in await cur.fetchall()]
