"""How a resident's inbox message reads, shared by the JSON/SSE API and the phone page: the same
sentence in both, in the reader's language, with the time in the communities' zone.

Messages are stored as a step and its parameters (:func:`cloud.ops.notify.outbox.notify_residents`),
not as text, so a resident who switches language reads the whole history in the new one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cloud.http.rendering import local_time
from cloud.ops.notify import templates
from cloud.ops.notify.outbox import resident_step


def step_text(lang: str, payload: dict[str, Any]) -> str:
    """The sentence for one step, e.g. 「工单 #12 已派给 陈师傅。」: the words of the channel copies
    too (:func:`cloud.ops.notify.outbox.resident_step`), so the page and the SMS never disagree."""
    return resident_step(payload, lang)


def present(lang: str, message: dict[str, Any]) -> dict[str, Any]:
    """One message as the phone shows it (the API's item and the SSE event's data)."""
    payload = message.get("payload") or {}
    at = message.get("at")
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    complaint = (payload.get("params") or {}).get("id") if "code" in payload else None
    state_key = f"complaint.state.{payload.get('state')}" if complaint else f"state.{payload.get('state')}"
    return {"id": message["id"], "event": message.get("event"), "work_order": payload.get("work_order"),
            "complaint": complaint, "step": payload.get("step"), "state": payload.get("state"),
            "text": step_text(lang, payload), "state_text": templates.text(state_key, lang),
            "at": local_time(at) if isinstance(at, datetime) else None}
