"""Complaints against the database, each change in the caller's transaction and on the trail.

The workflow is the property company's: received → investigating → handled → feedback (the
resident is told what was done) → closed. A complaint has a grade (``policy.complaint_grades``)
and two commitments taken from it when filed: *handled by* and *closed by*. The escalation tick
(:func:`escalate_due`) moves a complaint one step up the chain of its butler each time a
commitment passes unmet; the trail names people, not ids. Cycle time (filed → closed) is what the
manager page reports against the sector's benchmark.

Why its own state machine and not a work order's: a complaint is about the service, not a device;
it has no on-site clock, no routing by skill, and it may concern several work orders and a butler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import IllegalTransition, InvalidRequest, NotFound
from cloud.ops.model.policy import Policy
from cloud.ops.notify import templates
from cloud.ops.notify.masking import mask_text
from cloud.ops.notify.outbox import notify_resident
from cloud.ops.routing.repo import chain

Complaint = dict[str, Any]

#: action → (states it may be taken from, state it leads to)
TRANSITIONS: Final[dict[str, tuple[frozenset[str], str]]] = {
    "investigate": (frozenset({"received"}), "investigating"),
    "handle": (frozenset({"received", "investigating"}), "handled"),
    "feedback": (frozenset({"handled"}), "feedback"),
    "close": (frozenset({"feedback"}), "closed"),
}
STATES: Final = ("received", "investigating", "handled", "feedback", "closed")
_DAY: Final = timedelta(days=1)


@dataclass(slots=True)
class NewComplaint:
    community: str
    grade: str
    text: str
    reporter_user_id: int | None = None
    butler_id: int | None = None
    work_order_ids: list[int] = field(default_factory=list)


async def _trail(conn: AsyncConnection[Any], complaint_id: int, now: datetime, action: str, actor: Actor, *,
                 from_state: str | None = None, to_state: str | None = None, note: str = "",
                 data: dict[str, Any] | None = None) -> None:
    await conn.execute(
        """INSERT INTO complaint_trail (complaint_id, at, action, from_state, to_state, actor, actor_name, note, data)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (complaint_id, now, action, from_state, to_state, actor.label, actor.name, note, Jsonb(data or {})))


async def get(conn: AsyncConnection[Any], complaint_id: int, *, lock: bool = False) -> Complaint:
    if not -2**63 <= complaint_id < 2**63:
        raise NotFound(f"complaint {complaint_id} not found")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM complaints WHERE id = %s" + (" FOR UPDATE" if lock else ""), (complaint_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"complaint {complaint_id} not found")
    return row


async def file(conn: AsyncConnection[Any], policy: Policy, new: NewComplaint, now: datetime, actor: Actor) -> Complaint:
    """File a complaint; its commitments come from its grade."""
    grade = policy.complaint_grades.get(new.grade)
    if grade is None:
        raise InvalidRequest(f"unknown complaint grade {new.grade!r}; one of {', '.join(policy.complaint_grades)}")
    if not new.text.strip():
        raise InvalidRequest("a complaint needs a description")
    async with conn.transaction():
        if new.butler_id is not None:
            cur = await conn.execute("SELECT 1 FROM butlers WHERE id = %s AND community = %s",
                                     (new.butler_id, new.community))
            if await cur.fetchone() is None:
                raise InvalidRequest(f"butler {new.butler_id} does not serve community {new.community}")
        if new.work_order_ids:
            cur = await conn.execute("SELECT count(*) FROM work_orders WHERE id = ANY(%s) AND community = %s",
                                     (new.work_order_ids, new.community))
            found = await cur.fetchone()
            if found is None or found[0] != len(set(new.work_order_ids)):
                raise InvalidRequest("a linked work order does not exist in this community")
        handle_due, close_due = now + grade.handle, now + grade.close
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                """INSERT INTO complaints (community, grade, text, reporter_user_id, butler_id, work_order_ids, state,
                                           handle_due, close_due, next_escalation_at, created_at, updated_at)
                   VALUES (%s, %s, %s, %s, %s, %s, 'received', %s, %s, %s, %s, %s) RETURNING *""",
                (new.community, new.grade, new.text.strip(), new.reporter_user_id, new.butler_id,
                 sorted(set(new.work_order_ids)), handle_due, close_due, handle_due, now, now))
            row = await cur.fetchone()
        assert row is not None
        await _trail(conn, row["id"], now, "filed", actor, to_state="received", note=mask_text(new.text)[:500],
                     data={"grade": new.grade, "handle_due": handle_due.isoformat(),
                           "close_due": close_due.isoformat()})
        await _tell(conn, row, "complaint.filed", now, handle_by=templates.local(handle_due, await zone_of(conn, row)))
    return row


async def zone_of(conn: AsyncConnection[Any], row: Complaint) -> str | None:
    """The IANA zone of the complaint's community (its commitments are shown in it)."""
    cur = await conn.execute("SELECT timezone FROM communities WHERE code = %s", (row["community"],))
    found = await cur.fetchone()
    return str(found[0]) if found else None


async def _tell(conn: AsyncConnection[Any], row: Complaint, code: str, now: datetime, **params: Any) -> None:
    """Tell the resident who filed ``row`` (inbox, live, their channel); a staff-filed one has nobody."""
    if row["reporter_user_id"] is not None:
        await notify_resident(conn, row["reporter_user_id"], row["community"], code,
                              {"id": row["id"], "grade": row["grade"], "state": row["state"], **params}, now)


async def transition(conn: AsyncConnection[Any], complaint_id: int, action: str, actor: Actor, now: datetime,
                     note: str = "") -> Complaint:
    """Move a complaint on; feedback needs a note (what the resident is told)."""
    if action not in TRANSITIONS:
        raise InvalidRequest(f"unknown action {action!r}; one of {', '.join(TRANSITIONS)}")
    sources, target = TRANSITIONS[action]
    async with conn.transaction():
        row = await get(conn, complaint_id, lock=True)
        if row["state"] not in sources:
            allowed = [a for a, (src, _t) in TRANSITIONS.items() if row["state"] in src]
            raise IllegalTransition(row["state"], action, allowed)
        if action == "feedback" and not note.strip():
            raise InvalidRequest("feedback needs the text the resident is told")
        sets: dict[str, Any] = {"state": target, "updated_at": now}
        if target == "handled":
            # the level stays: a complaint that missed one commitment and then the next goes higher
            sets |= {"handled_at": now, "next_escalation_at": row["close_due"]}
        if target == "closed":
            sets |= {"closed_at": now, "next_escalation_at": None}
        columns = ", ".join(f"{k} = %s" for k in sets)
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"UPDATE complaints SET {columns} WHERE id = %s RETURNING *",
                              (*sets.values(), complaint_id))
            updated = await cur.fetchone()
        assert updated is not None
        await _trail(conn, complaint_id, now, action, actor, from_state=row["state"], to_state=target,
                     note=note.strip()[:1000])
        await _tell(conn, updated, f"complaint.{action}", now, note=note.strip()[:500])
    return updated


async def reply(conn: AsyncConnection[Any], complaint_id: int, satisfied: bool, comment: str, actor: Actor,
                now: datetime) -> Complaint:
    """The resident answers the feedback they were given: satisfied closes the complaint (the
    cycle ends with the resident, not with staff), not satisfied sends it back to investigating
    with a day's commitment to handle it again; both on the trail and in the resident's inbox."""
    async with conn.transaction():
        row = await get(conn, complaint_id, lock=True)
        if actor.role != "admin" and row["reporter_user_id"] != actor.id:
            raise NotFound(f"complaint {complaint_id} not found")  # another resident's: not even its existence
        if row["state"] != "feedback":
            raise IllegalTransition(row["state"], "reply", ["reply (once the feedback is given)"])
        target = "closed" if satisfied else "investigating"
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                """UPDATE complaints SET state = %(target)s, updated_at = %(now)s,
                          closed_at = CASE WHEN %(closed)s THEN %(now)s END,
                          handled_at = CASE WHEN %(closed)s THEN handled_at END,
                          next_escalation_at = CASE WHEN %(closed)s THEN NULL ELSE %(again)s::timestamptz END
                    WHERE id = %(id)s RETURNING *""",
                {"target": target, "now": now, "closed": satisfied, "again": now + _DAY, "id": complaint_id})
            updated = await cur.fetchone()
        assert updated is not None
        action = "resident_satisfied" if satisfied else "resident_unsatisfied"
        await _trail(conn, complaint_id, now, action, actor, from_state="feedback", to_state=target,
                     note=mask_text(comment.strip())[:1000], data={"satisfied": satisfied})
        await _tell(conn, updated, f"complaint.{action}", now)
    return updated


async def escalate_due(conn: AsyncConnection[Any], now: datetime, limit: int = 100) -> int:
    """One escalation step for every open complaint whose current commitment has passed: the
    level goes up, the next person of the butler's chain (or the community's leads) is named on
    the trail and gets it in their inbox; the next check is the close commitment, or a day."""
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT * FROM complaints WHERE state <> 'closed' AND next_escalation_at <= %s
               ORDER BY next_escalation_at LIMIT %s FOR UPDATE SKIP LOCKED""", (now, limit))
        rows = await cur.fetchall()
        for row in rows:
            level = row["escalation_level"] + 1
            ladder = await chain(conn, row["butler_id"] if row["butler_id"] else -1, row["community"])
            target = ladder[min(level, len(ladder)) - 1] if ladder else None
            missed = "handled" if row["state"] in ("received", "investigating") else "closed"
            following = row["close_due"] if missed == "handled" and row["close_due"] > now else now + _DAY
            await cur.execute("UPDATE complaints SET escalation_level = %s, next_escalation_at = %s, updated_at = %s "
                              "WHERE id = %s", (level, following, now, row["id"]))
            name = None
            if target is not None:
                await cur.execute("SELECT b.name, u.lang FROM butlers b LEFT JOIN users u ON u.id = b.user_id "
                                  "WHERE b.id = %s", (target,))
                found = await cur.fetchone()
                name = found["name"] if found else None
                lang = found["lang"] if found else None  # the words of the person told, Chinese by default
                subject = templates.text(f"complaint.missed_{missed}", lang, id=row["id"], level=level,
                                         grade=templates.text(f"grade.{row['grade']}", lang))
                await conn.execute(
                    """INSERT INTO notifications (channel, butler_id, event, community, subject, body, payload, state,
                                                  created_at, sent_at)
                       VALUES ('inbox', %s, 'complaint.escalated', %s, %s, '', %s, 'sent', %s, %s)""",
                    (target, row["community"], subject,
                     Jsonb({"complaint": row["id"], "level": level, "missed": missed}), now, now))
            await _trail(conn, row["id"], now, "escalated", Actor.system("escalation"),
                         from_state=row["state"], to_state=row["state"],
                         note=f"level {level}: not {missed} in time" + (f" → {name}" if name else ""),
                         data={"level": level, "to": target, "to_name": name, "missed": missed})
    return len(rows)


async def trail(conn: AsyncConnection[Any], complaint_id: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT at, action, from_state, to_state, actor, actor_name, note, data FROM complaint_trail "
                          "WHERE complaint_id = %s ORDER BY id", (complaint_id,))
        return await cur.fetchall()



async def readable_trail(conn: AsyncConnection[Any], complaint_id: int, lang: str | None) -> list[dict[str, Any]]:
    """The trail as the resident's page shows it: who (the stored name; the system's in words),
    what (zh/en), when and the note; an escalation's note (staff names) is not the resident's."""
    out = []
    for entry in await trail(conn, complaint_id):
        action = str(entry["action"])
        system = str(entry["actor"]).startswith("system:")
        out.append({"at": entry["at"], "action": action, "action_text": templates.text(f"trail.{action}", lang),
                    "actor_name": templates.text("actor.system.escalation", lang) if system else entry["actor_name"],
                    "note": "" if system else entry["note"]})
    return out
