"""The work-order state machine, pure: which action moves which state where.

::

    new ─assign─▶ assigned ─accept─▶ accepted ─depart─▶ on_the_way ─arrive─▶ on_site ─resolve─▶ resolved
                   │   ▲                │ └──────────arrive────────────────────▲  │               │   │
                reject │ reassign       └─hold─▶ on_hold ─resume─▶ on_site ────┘ hold        close  reopen
                   ▼   │                                                                       ▼    ▼
                 rejected ─assign─▶ assigned                                                closed assigned

    cancel: any open state before on_site/resolved ─▶ cancelled
    auto_close: alarm cleared before anyone is on site, only if the rule allows ─▶ closed

Final states: ``closed`` and ``cancelled``. A cleared alarm is *not* a repair: unless the rule
allows auto-close, the order stays open and the clearance is only noted in its trail.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from cloud.ops.model.errors import IllegalTransition


class State(StrEnum):
    new = "new"
    assigned = "assigned"
    accepted = "accepted"
    on_the_way = "on_the_way"
    on_site = "on_site"
    on_hold = "on_hold"
    resolved = "resolved"
    closed = "closed"
    rejected = "rejected"
    cancelled = "cancelled"


class Action(StrEnum):
    assign = "assign"
    reassign = "reassign"
    accept = "accept"
    reject = "reject"
    depart = "depart"
    arrive = "arrive"
    hold = "hold"
    resume = "resume"
    resolve = "resolve"
    reopen = "reopen"
    close = "close"
    cancel = "cancel"
    auto_close = "auto_close"


S = State
TRANSITIONS: Final[dict[Action, tuple[frozenset[State], State]]] = {
    Action.assign: (frozenset({S.new, S.rejected}), S.assigned),
    Action.reassign: (frozenset({S.assigned, S.accepted, S.on_the_way, S.on_hold, S.rejected}), S.assigned),
    Action.accept: (frozenset({S.assigned}), S.accepted),
    Action.reject: (frozenset({S.assigned}), S.rejected),
    Action.depart: (frozenset({S.accepted}), S.on_the_way),
    Action.arrive: (frozenset({S.accepted, S.on_the_way}), S.on_site),
    Action.hold: (frozenset({S.accepted, S.on_the_way, S.on_site}), S.on_hold),
    Action.resume: (frozenset({S.on_hold}), S.on_site),
    Action.resolve: (frozenset({S.on_site}), S.resolved),
    Action.reopen: (frozenset({S.resolved}), S.assigned),
    Action.close: (frozenset({S.resolved}), S.closed),
    Action.cancel: (frozenset({S.new, S.assigned, S.accepted, S.on_the_way, S.on_hold, S.rejected}), S.cancelled),
    Action.auto_close: (frozenset({S.new, S.assigned, S.accepted, S.on_the_way, S.rejected}), S.closed),
}

FINAL: Final = frozenset({S.closed, S.cancelled})
OPEN: Final = frozenset(State) - FINAL - {S.resolved}
"""States in which someone still has to do something (counted as a butler's open load)."""
BEFORE_ON_SITE: Final = frozenset({S.new, S.assigned, S.accepted, S.on_the_way, S.rejected})


def allowed(state: State) -> list[str]:
    return [a.value for a, (sources, _) in TRANSITIONS.items() if state in sources]


def next_state(state: State | str, action: Action | str) -> State:
    """The state after ``action``; raise :class:`IllegalTransition` when it is not allowed."""
    current = State(state)
    try:
        act = Action(action)
    except ValueError:
        raise IllegalTransition(current.value, str(action), allowed(current)) from None
    sources, target = TRANSITIONS[act]
    if current not in sources:
        raise IllegalTransition(current.value, act.value, allowed(current))
    return target
