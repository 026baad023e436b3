"""Who gets the work: a documented score over the eligible butlers.

Eligible: active, same community, covers the building (an empty building list covers all), has
the skill for the device kind (``general`` work goes to anyone), and is a full-time butler
(volunteers only receive work a full-time butler hands them). Among the eligible, those on duty
come first; if nobody is on duty the best off-duty butler still gets it (and the escalation
clock runs as usual) rather than leaving the order unassigned.

Score (higher wins; ties broken by fewer open orders, then lowest id for determinism)::

    score = W_STAR * (star_level - 1) / 4          # 0 … 1: residents' ratings and SLA history
          - W_LOAD * min(open_orders, LOAD_CAP) / LOAD_CAP   # 0 … 1: spread the work
          + W_BUILDING * (building explicitly listed)        # the butler who owns the building
          + W_DUTY * on_duty

with ``W_STAR = 1.0``, ``W_LOAD = 1.5``, ``W_BUILDING = 0.5``, ``W_DUTY = 10`` and ``LOAD_CAP = 5``:
a 5-star butler with 2 open orders (1.0 − 0.6 = 0.4) loses to a 3-star one with none (0.5), but
beats a 3-star one with 1 open order (0.5 − 0.3 = 0.2). Being on duty dominates everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

W_STAR: Final = 1.0
W_LOAD: Final = 1.5
W_BUILDING: Final = 0.5
W_DUTY: Final = 10.0
LOAD_CAP: Final = 5


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    name: str
    kind: str
    star_level: int
    open_orders: int
    on_duty: bool
    skills: frozenset[str] = field(default_factory=frozenset)
    buildings: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Choice:
    butler_id: int
    score: float
    on_duty: bool
    reason: str


def eligible(c: Candidate, skill: str, building: str | None, allow_volunteers: bool = False) -> bool:
    if c.kind == "volunteer" and not allow_volunteers:
        return False
    if skill != "general" and skill not in c.skills:
        return False
    return not c.buildings or building is None or building in c.buildings


def score(c: Candidate, building: str | None) -> float:
    value = W_STAR * (min(max(c.star_level, 1), 5) - 1) / 4
    value -= W_LOAD * min(c.open_orders, LOAD_CAP) / LOAD_CAP
    if building is not None and building in c.buildings:
        value += W_BUILDING
    if c.on_duty:
        value += W_DUTY
    return round(value, 6)


def choose(
    candidates: list[Candidate],
    skill: str,
    building: str | None,
    exclude: frozenset[int] = frozenset(),
) -> Choice | None:
    """The best eligible candidate, or None when nobody in the community can take the work."""
    pool = [c for c in candidates if c.id not in exclude and eligible(c, skill, building)]
    if not pool:
        return None
    best = max(pool, key=lambda c: (score(c, building), -c.open_orders, -c.id))
    s = score(best, building)
    reason = (
        f"{'on duty' if best.on_duty else 'nobody on duty; best off duty'}, skill {skill}, "
        f"{best.star_level}★, {best.open_orders} open, score {s:.2f}"
    )
    return Choice(best.id, s, best.on_duty, reason)
