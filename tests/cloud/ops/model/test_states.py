"""The pure state machine, property-based: every sequence of actions either follows the table or
raises IllegalTransition naming what is allowed; final states are final; every state is reachable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cloud.ops.model.errors import IllegalTransition
from cloud.ops.model.states import FINAL, TRANSITIONS, Action, State, allowed, next_state


class WorkOrderMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = State.new
        self.history: list[State] = [State.new]

    @rule(action=st.sampled_from(list(Action)))
    def act(self, action: Action) -> None:
        sources, target = TRANSITIONS[action]
        if self.state in sources:
            assert next_state(self.state, action) is target
            self.state = target
            self.history.append(target)
        else:
            with pytest.raises(IllegalTransition) as info:
                next_state(self.state, action)
            assert info.value.allowed == allowed(self.state)
            assert action.value not in info.value.allowed

    @invariant()
    def final_is_final(self) -> None:
        if self.state in FINAL:
            assert allowed(self.state) == []
        # resolved is reached only from on_site
        for before, after in zip(self.history, self.history[1:], strict=False):
            if after is State.resolved:
                assert before is State.on_site


TestWorkOrderMachine = WorkOrderMachine.TestCase


def test_every_state_is_reachable_from_new() -> None:
    seen = {State.new}
    frontier = [State.new]
    while frontier:
        state = frontier.pop()
        for name in allowed(state):
            target = next_state(state, name)
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(State)


@given(st.text(max_size=12))
def test_unknown_action_is_illegal(name: str) -> None:
    if name in {a.value for a in Action}:
        return
    with pytest.raises(IllegalTransition):
        next_state(State.assigned, name)


def test_error_message_names_allowed_actions() -> None:
    with pytest.raises(IllegalTransition, match="cannot resolve a work order that is assigned; allowed: "):
        next_state("assigned", "resolve")
