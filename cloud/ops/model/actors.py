"""Who did it: every trail entry names an actor (a butler, a user of the web app, or the system)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """``kind`` is ``butler``, ``user`` or ``system``; ``role`` is the web role when known."""

    kind: str
    id: int | None = None
    name: str = ""
    role: str = ""
    butler_id: int | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}" if self.id is not None else f"{self.kind}:{self.name or '-'}"

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls("system", None, name, "system")

    @classmethod
    def butler(cls, butler_id: int, name: str = "") -> Actor:
        return cls("butler", butler_id, name, "butler", butler_id)


SYSTEM_ALARMS = Actor.system("alarms")
SYSTEM_ROUTING = Actor.system("routing")
SYSTEM_ESCALATION = Actor.system("escalation")
