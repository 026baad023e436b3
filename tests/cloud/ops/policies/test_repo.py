"""A community's policy on top of the YAML default: merged clocks, only differences stored, the
durations spelled as the YAML spells them, and the clock order checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from cloud.ops.model.policy import Clocks, default_policy
from cloud.ops.policies.repo import CommunityPolicy, NotifyPolicy, merge, minimal, spell


def test_merge_keeps_the_default_where_the_community_says_nothing() -> None:
    base = default_policy()
    own = CommunityPolicy(sla={"P2": Clocks(respond="30m", on_site="4h", resolve="1d", escalate_every="15m")},
                          notify=NotifyPolicy(reminder_every="45m"))
    merged = merge(base, own)
    opened = datetime(2026, 12, 7, 2, tzinfo=UTC)
    assert merged.sla("P2", opened).respond_due == opened + timedelta(minutes=30)
    assert merged.priorities["P2"].label == "repair"  # the YAML's label, not the override's empty one
    assert merged.priorities["P1"] == base.priorities["P1"]
    assert merged.reminder_every == timedelta(minutes=45)
    assert merged.overrides == base.overrides
    assert merge(base, CommunityPolicy()) is base


def test_minimal_drops_what_equals_the_default() -> None:
    base = default_policy()
    own = CommunityPolicy(sla={**base.priorities, "P3": Clocks(respond="4h", on_site="1d", resolve="3d",
                                                                escalate_every="4h")},
                          notify=NotifyPolicy(email=False, reminder_every=base.reminder_every))
    kept = minimal(base, own)
    assert list(kept.sla) == ["P3"]
    assert kept.notify.reminder_every is None
    assert kept.notify.email is False


def test_spell_and_order() -> None:
    assert [spell(timedelta(seconds=s)) for s in (0, 90, 7200, 5400, 259200)] == ["0s", "1m30s", "2h", "1h30m", "3d"]
    with pytest.raises(ValidationError, match="respond ≤ on site ≤ resolve"):
        CommunityPolicy(sla={"P1": Clocks(respond="1h", on_site="30m", resolve="4h", escalate_every="10m")})
    with pytest.raises(ValidationError, match="at least one minute"):
        CommunityPolicy(notify=NotifyPolicy(reminder_every="5s"))
