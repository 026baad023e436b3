"""The scorer's result does not depend on where the window starts, the step size or restarts.

Pure layer (no database): :func:`cloud.analytics.timeline.advance` is driven like the service
drives :func:`cloud.analytics.jobs.score` — a store of detections standing in for
``analytics_detections`` (unique episode key, at most one open per detector), the last scored
hour standing in for ``analytics_scoring_state`` — and compared with one pass over the range.
The database path is checked against the same reference in ``test_store_and_jobs.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.analytics_eval import single_device
from cloud.analytics.detectors import DETECTORS
from cloud.analytics.detectors.base import Params
from cloud.analytics.frames import DAY_MS, HOUR_MS, HourlyFrame, span
from cloud.analytics.jobs import shipped_limits
from cloud.analytics.timeline import Advance, Clear, OpenDetection, Raise, advance, cell_of, cell_range

START_MS = 1_767_225_600_000 + 5 * HOUR_MS  # not on the cells' grid on purpose
DAYS = 34


@dataclass(slots=True)
class Store:
    """What ``analytics_detections`` + ``analytics_scoring_state`` hold for one device."""

    rows: dict[tuple[str, int], dict[str, object]] = field(default_factory=dict)
    scored_until: int | None = None

    def open_at(self, at_ms: int) -> dict[str, OpenDetection]:
        return {name: OpenDetection(name, detected) for (name, detected), row in self.rows.items()
                if detected <= at_ms and (row["cleared"] is None or int(str(row["cleared"])) >= at_ms)}

    def apply(self, outcome: Advance) -> None:
        for event in outcome.events:
            if isinstance(event, Raise):
                det = event.detection
                key = (det.detector, det.detected_ms)
                already_open = any(row["cleared"] is None and name == det.detector
                                   for (name, _), row in self.rows.items())
                if key not in self.rows and not already_open:
                    self.rows[key] = {"onset": det.start_ms, "cleared": None, "message": det.message}
            elif isinstance(event, Clear):
                row = self.rows.get((event.detector, event.detected_ms))
                if row is not None and row["cleared"] is None:
                    row["cleared"] = event.at_ms


@cache
def _pump() -> tuple[HourlyFrame, str]:
    frame, _ = single_device("pump", "p", days=DAYS, seed=11, start_ms=START_MS, fault="bearing_wear",
                             fault_start_day=20, fault_params={"percent_per_day": 6.0})
    return frame, "pump"


def _model(frame: HourlyFrame, kind: str) -> tuple[Params, Params]:
    detector = DETECTORS[kind]
    params = detector.hyper(shipped_limits().get(kind, {}))
    params.setdefault("limits", {c.name: c.floor for c in detector.channels})
    baseline = detector.fit_baseline(frame.window(frame.start_ms, frame.start_ms + 14 * DAY_MS), params)
    return baseline, params


@cache
def _pump_model() -> tuple[Params, Params]:
    return _model(*_pump())


def _run(store: Store, since: int, end: int) -> None:
    """One ``score`` call: resume from the earlier of ``since`` and the last scored hour."""
    frame, kind = _pump()
    baseline, params = _pump_model()
    start = min(since, store.scored_until) if store.scored_until is not None else since
    begin = cell_range(cell_of(start))[0]
    outcome = advance(DETECTORS[kind], lambda lo, hi: span(frame, lo, hi), baseline, params, from_ms=start,
                      end_ms=end, open_before=store.open_at(begin))
    store.apply(outcome)
    store.scored_until = max(store.scored_until or end, end)


def _one_pass(first: int, end: int) -> Store:
    store = Store()
    _run(store, first, end)
    return store


def test_one_pass_finds_the_wear_after_it_starts() -> None:
    first = START_MS + 14 * DAY_MS
    store = _one_pass(first, START_MS + DAYS * DAY_MS)
    wear = [key for key in store.rows if key[0] == "pump.current_excess"]
    assert len(wear) == 1
    assert START_MS + 20 * DAY_MS < wear[0][1] < START_MS + 26 * DAY_MS


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(offset_h=st.integers(0, 6 * 24), steps=st.lists(st.sampled_from([1, 2, 5, 6, 13, 24, 50, 120]), min_size=1,
                                                       max_size=12),
       restarts=st.lists(st.booleans(), min_size=12, max_size=12),
       gaps=st.lists(st.sampled_from([0, 0, 0, 7, 30]), min_size=12, max_size=12))
def test_any_window_start_step_and_restart_gives_the_one_pass_detections(
        offset_h: int, steps: list[int], restarts: list[bool], gaps: list[int]) -> None:
    first = START_MS + 14 * DAY_MS + offset_h * HOUR_MS
    end = START_MS + DAYS * DAY_MS
    windowed = Store()
    cursor = first
    i = 0
    while cursor < end:
        step = steps[i % len(steps)] * HOUR_MS
        stop = min(end, cursor + step)
        # a restarted service has lost its in-memory "last scored": it asks for the last 2 hours,
        # or (an outage) only for hours after a gap — the store's scored_until carries the rest
        restarted = i and restarts[i % 12]
        since = max(first, stop - (2 + gaps[i % 12]) * HOUR_MS) if restarted else cursor
        _run(windowed, since, stop)
        cursor = stop
        i += 1
    reference = _one_pass(first, end)
    assert windowed.rows.keys() == reference.rows.keys()
    for key, row in reference.rows.items():
        assert windowed.rows[key] == row, key


def test_every_statistic_is_causal() -> None:
    """The premise of the fixed-origin design: a shorter frame gives the same statistics for the
    hours it has (every detector, on its own simulated device)."""
    for kind, detector in DETECTORS.items():
        frame, _ = single_device(kind, "d", days=22, seed=3, start_ms=START_MS)
        baseline, params = _model(frame, kind)
        full = detector.statistics(frame, baseline, detector.hyper(params))
        for cut in (15 * 24 + 1, 17 * 24 + 13, 21 * 24 + 23):
            part = detector.statistics(frame.window(frame.start_ms, frame.start_ms + cut * HOUR_MS), baseline,
                                       detector.hyper(params))
            for name, values in part.stats.items():
                np.testing.assert_array_equal(values, full.stats[name][:cut], err_msg=f"{kind}.{name}")
            for name, values in part.context.items():
                np.testing.assert_array_equal(values, full.context[name][:cut], err_msg=f"{kind} context {name}")


def test_the_explanation_says_what_moved_how_far_since_when_and_what_to_check_in_both_languages() -> None:
    store = _one_pass(START_MS + 14 * DAY_MS, START_MS + DAYS * DAY_MS)
    (message,) = [str(row["message"]) for key, row in store.rows.items() if key[0] == "pump.current_excess"]
    zh, _, en = message.partition(" / ")
    assert zh.startswith("水泵 p 在相同压力下电流比平时高")
    assert "本机正常约" in zh  # this pump's own normal, in amperes
    assert "起）" in zh  # since when, in the community's time
    assert "检查轴承和电机" in zh
    assert "more current than usual for this pressure" in en
    assert "where this pump normally draws" in en
    assert "(since 2026-01-2" in en
    assert en.endswith("UTC+8)")


def test_an_episode_raised_under_one_model_is_closed_under_the_next() -> None:
    """The daily retrain puts a new model in force (``not_before_ms``): its passes re-derive the
    episodes of the cell and must not raise those confirmed before it, but an episode the previous
    model raised whose end falls under the new one is closed by the new one — before, its clear
    was dropped with the re-derived raise and the detection stayed open until the next cell's
    hand-over, up to a week (issue 15: a meter's next phase loss went unseen behind it)."""
    onset_ms = START_MS + 20 * DAY_MS + 22 * HOUR_MS  # a 4-hour phase loss across the next model's start
    frame, _ = single_device("meter", "m", days=24, seed=4, start_ms=START_MS, fault="phase_loss",
                             fault_start_day=20 + 22 / 24, fault_hours=4.0, fault_params={"phase": 2})
    baseline, params = _model(frame, "meter")
    store = Store()
    for model_from, model_to in ((START_MS + 14 * DAY_MS, START_MS + 21 * DAY_MS),
                                 (START_MS + 21 * DAY_MS, START_MS + 22 * DAY_MS)):
        begin = cell_range(cell_of(model_from))[0]
        store.apply(advance(DETECTORS["meter"], lambda lo, hi: span(frame, lo, hi), baseline, params,
                            from_ms=model_from, end_ms=model_to, open_before=store.open_at(begin),
                            not_before_ms=model_from))
    loss = [(key, row) for key, row in store.rows.items() if key[0] == "meter.phase_loss"]
    assert len(loss) == 1
    (_, detected_ms), row = loss[0]
    assert onset_ms <= detected_ms < START_MS + 21 * DAY_MS  # raised by the first model
    assert row["cleared"] is not None
    assert START_MS + 21 * DAY_MS < int(str(row["cleared"])) <= onset_ms + 5 * HOUR_MS
