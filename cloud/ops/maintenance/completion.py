"""Completing a planned maintenance: the maintainer's submission, then the property staff's confirmation.

A planned order is not done when someone taps "resolve". The maintainer, on site, submits the
whole checklist of the template — every item answered, a reading for every reading item (checked
against its expected range: out of range is recorded as failed, not refused, because a finding is
exactly what maintenance is for), a photo wherever the template asks for one — and signs on the
phone; that resolves the work order. The property staff then confirms with their own signature
(a different person: the maintainer cannot confirm their own work), which closes the order and
makes the maintenance *completed* — the date the next one is counted from, and what the lift
compliance flag looks at. Both steps, with the checklist, are in the work order's trail.

A signature is the PNG a phone's canvas produces, as a ``data:image/png;base64,`` URL (checked to
be a PNG, at most 200 kB); photos are references of stored photos, as for repair orders.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from psycopg import AsyncConnection

from cloud.ops.maintenance import repo
from cloud.ops.maintenance.templates import Catalog, Template
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import InvalidRequest, NotAllowed
from cloud.ops.model.policy import Policy
from cloud.ops.model.states import Action
from cloud.ops.workorders import repo as wo_repo

_PNG: Final = b"\x89PNG\r\n\x1a\n"
_PREFIX: Final = "data:image/png;base64,"
MAX_SIGNATURE: Final = 200_000


@dataclass(frozen=True, slots=True)
class Answer:
    """One checklist item as answered on site."""

    id: str
    ok: bool | None = None
    value: float | None = None
    photo: str | None = None
    note: str = ""


def check_signature(signature: str, field: str) -> str:
    if not signature.startswith(_PREFIX) or len(signature) > MAX_SIGNATURE:
        raise InvalidRequest(f"{field}: a signature is a data:image/png;base64 URL of at most 200 kB / 需要手写签名")
    try:
        raw = base64.b64decode(signature[len(_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{field}: not valid base64 / 签名数据无效") from None
    if not raw.startswith(_PNG):
        raise InvalidRequest(f"{field}: not a PNG image / 签名不是 PNG 图片")
    return signature


def evaluate(template: Template, answers: list[Answer]) -> list[dict[str, Any]]:
    """Check the answers against the template; return the checklist as stored (with ``ok`` decided
    for readings). Raise InvalidRequest listing every missing or malformed item at once."""
    given = {a.id: a for a in answers}
    problems: list[str] = []
    unknown = sorted(set(given) - {item.id for item in template.items})
    if unknown:
        problems.append(f"unknown items: {', '.join(unknown)}")
    out: list[dict[str, Any]] = []
    for item in template.items:
        answer = given.get(item.id)
        if answer is None:
            problems.append(f"{item.id}: not answered / 未填写")
            continue
        if item.photo and not answer.photo:
            problems.append(f"{item.id}: photo required / 需要照片")
        if item.check == "reading":
            if answer.value is None:
                problems.append(f"{item.id}: reading required ({item.unit}) / 需要读数")
                continue
            assert item.expected is not None  # the template's validator guarantees it
            ok = item.expected.holds(answer.value)
        else:
            if answer.ok is None:
                problems.append(f"{item.id}: pass or fail required / 需要判定合格与否")
                continue
            ok = answer.ok
        out.append({"id": item.id, "text": item.text.zh, "ok": ok, "value": answer.value, "unit": item.unit,
                    "photo": answer.photo, "note": answer.note[:500]})
    if problems:
        raise InvalidRequest("checklist: " + "; ".join(problems))
    return out


async def submit(conn: AsyncConnection[Any], policy: Policy, catalog: Catalog, wo_id: int, actor: Actor,
                 answers: list[Answer], signature: str, now: datetime) -> dict[str, Any]:
    """The maintainer's submission: checklist, readings, photos, signature → the order is resolved."""
    async with conn.transaction():
        order = await repo.order_for_work_order(conn, wo_id, lock=True)
        if order["state"] != "open":
            raise InvalidRequest(f"planned order for work order {wo_id} is already {order['state']}")
        checklist = evaluate(catalog.get(order["template"]), answers)
        check_signature(signature, "signature")
        wo = await wo_repo.transition(conn, policy, wo_id, Action.resolve, actor, now,
                                      note="计划维保已提交 / planned maintenance submitted")
        for photo in sorted({str(a["photo"]) for a in checklist if a["photo"]}):
            await wo_repo.add_photo(conn, wo_id, photo)
        await repo.record_submission(conn, order["id"], checklist, actor.label, signature, now)
        failed = [a["id"] for a in checklist if not a["ok"]]
        await wo_repo.add_trail(conn, wo_id, now, "maintenance_submitted", actor,
                                note=(f"{len(checklist)} 项，{len(failed)} 项不合格 / {len(checklist)} items, "
                                      f"{len(failed)} failed" + (f": {', '.join(failed)}" if failed else "")),
                                data={"checklist": checklist, "signed": True})
        return wo


async def confirm(conn: AsyncConnection[Any], policy: Policy, wo_id: int, actor: Actor, signature: str,
                  now: datetime) -> dict[str, Any]:
    """The property staff's confirmation (a different person) → the order is closed, the maintenance completed."""
    async with conn.transaction():
        order = await repo.order_for_work_order(conn, wo_id, lock=True)
        if order["state"] != "submitted":
            raise InvalidRequest(f"planned order for work order {wo_id} is {order['state']}, not submitted")
        if actor.label == order["maintainer"]:
            raise NotAllowed("the maintainer cannot confirm their own maintenance / 维保人不能自己确认")
        if actor.role in ("resident", "contractor"):
            raise NotAllowed("only property staff confirm maintenance / 仅物业人员可确认")
        check_signature(signature, "signature")
        wo = await wo_repo.transition(conn, policy, wo_id, Action.close, actor, now,
                                      note="物业确认维保完成 / property staff confirmed the maintenance")
        await repo.record_confirmation(conn, order["id"], actor.label, signature, now)
        await wo_repo.add_trail(conn, wo_id, now, "maintenance_confirmed", actor,
                                note="双方签字确认 / signed by maintainer and property staff",
                                data={"maintainer": order["maintainer"], "confirmed_by": actor.label})
        return wo
