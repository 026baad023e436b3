"""The alarm event every source speaks (edge uplink, fleet rules, system watchdogs)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from guanjia.core.lang import split_bilingual
from guanjia.core.wire import Scalar
from rules.ruleset import MESSAGE_ZH_LABEL

Source = Literal["edge", "fleet", "system"]

GATEWAY_OFFLINE_RULE: Final = "gateway_offline"
"""The offline watchdog's rule (device = the gateway's code); the alarm that inhibits the
communication alarms of the devices behind that gateway."""


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """A raise or clear of (device, rule) at device time ``ts`` (epoch ms)."""

    community: str
    device: str
    rule: str
    state: Literal["raise", "clear"]
    ts: int
    severity: str = "warning"
    message: str = ""
    value: Scalar = None
    work_order: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    gateway: str | None = None
    source: Source = "edge"
    device_kind: str | None = None
    building: str | None = None
    seq: int | None = None
    """The gateway outbox seq of the batch that carried the event (edge events only)."""
    incarnation: str | None = None
    """The outbox incarnation of that seq (a restarted seq counter is a new one); ``None`` = unknown."""

    @property
    def message_zh(self) -> str | None:
        """The message in Chinese: the ``message_zh`` label (the edge renders it from the rule's
        ``message_zh``; cloud-born alarms set it with :func:`zh_label`). ``message`` is English."""
        return self.labels.get(MESSAGE_ZH_LABEL) or None

    @classmethod
    def from_wire(cls, item: dict[str, Any], community: str, gateway: str, seq: int | None = None,
                  incarnation: str | None = None) -> AlarmEvent:
        """From one decoded ``alarms`` item of the wire contract (:func:`guanjia.core.wire.decode`)."""
        labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
        return cls(
            community=community, device=item["device"], rule=item["rule"], state=item["state"], ts=int(item["ts"]),
            severity=str(item.get("severity", "warning")).lower(), message=str(item.get("message", "")),
            value=item.get("value"), work_order=bool(item.get("work_order", False)), labels=labels,
            gateway=gateway, source="edge", device_kind=labels.get("kind"), building=labels.get("building"),
            seq=seq, incarnation=incarnation,
        )


def zh_label(zh: str, labels: dict[str, str] | None = None) -> dict[str, str]:
    """``labels`` with the Chinese message: how a cloud-born alarm (watchdog, fleet rule, planner)
    carries its message in both languages, the same way as an edge alarm (``message`` = English)."""
    return {**(labels or {}), MESSAGE_ZH_LABEL: zh}


def with_zh(event: AlarmEvent) -> AlarmEvent:
    """``event`` with its message in both languages: a ``中文 / English`` message without a
    ``message_zh`` label is split into the two (:func:`split_bilingual`)."""
    if event.message_zh is not None:
        return event
    en, zh = split_bilingual(event.message)
    return event if zh is None else dataclasses.replace(event, message=en, labels=zh_label(zh, event.labels))


SEVERITY_RANK = {"critical": 4, "major": 3, "minor": 2, "warning": 1, "info": 0, "indeterminate": 0}


def status(active: bool, acknowledged: bool) -> str:
    """ThingsBoard-style combined status: ACTIVE_UNACK, ACTIVE_ACK, CLEARED_UNACK, CLEARED_ACK."""
    return f"{'ACTIVE' if active else 'CLEARED'}_{'ACK' if acknowledged else 'UNACK'}"
