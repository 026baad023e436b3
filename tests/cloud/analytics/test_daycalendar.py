"""The day calendar (China's statutory holidays and 调休 from the ``holidays`` library, a
community's own days) and what the detectors do with it on a holiday's empty building."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from bench.analytics_eval import single_device
from cloud.analytics.daycalendar import CalendarError, DayCalendar, DayType, spans, statutory
from cloud.analytics.detectors import DETECTORS
from cloud.analytics.frames import DAY_MS, HOUR_MS
from simulators.labelled_fleet import OperatingChange

D = dt.date
SPRING_FESTIVAL_MS = 1_771_084_800_000
"""2026-02-15 00:00 in Beijing (16:00 UTC the day before): the first day of the 9 days off."""


def test_the_2026_spring_festival_and_national_day_are_the_state_councils_days() -> None:
    calendar = DayCalendar()
    festival = [D(2026, 2, 15) + dt.timedelta(days=i) for i in range(9)]  # 15–23 Feb, 9 days off
    assert all(calendar.day_type(d) is DayType.holiday for d in festival)
    assert calendar.day_type(D(2026, 2, 24)) is DayType.ordinary
    # the notice makes Saturday 14 Feb and Saturday 28 Feb working days
    assert calendar.day_type(D(2026, 2, 14)) is DayType.makeup
    assert calendar.day_type(D(2026, 2, 28)) is DayType.makeup
    # National Day: 1–7 Oct (7 days), worked Sunday 20 Sep and Saturday 10 Oct; 8 Oct is a workday
    assert all(calendar.day_type(D(2026, 10, d)) is DayType.holiday for d in range(1, 8))
    assert calendar.day_type(D(2026, 10, 8)) is DayType.ordinary
    assert {D(2026, 9, 20), D(2026, 10, 10)} <= statutory(2026)[1]
    # an ordinary weekend is not a holiday
    assert calendar.day_type(D(2026, 3, 7)) is DayType.ordinary


def test_the_day_type_of_an_hour_is_decided_in_the_communitys_local_time() -> None:
    hours = np.array([SPRING_FESTIVAL_MS - HOUR_MS, SPRING_FESTIVAL_MS], dtype=np.int64)
    assert DayCalendar().hour_types(hours).tolist() == [DayType.makeup, DayType.holiday]
    # the same instants in London are still 14 Feb (a make-up workday there too, by China's calendar)
    assert DayCalendar("Europe/London").hour_types(hours).tolist() == [DayType.makeup, DayType.makeup]
    assert spans(DayCalendar(), SPRING_FESTIVAL_MS - 5 * DAY_MS, SPRING_FESTIVAL_MS + 20 * DAY_MS) == [
        (SPRING_FESTIVAL_MS, SPRING_FESTIVAL_MS + 9 * DAY_MS)]


def test_a_community_adds_its_own_closure_day_and_takes_a_statutory_day_back() -> None:
    own = DayCalendar(own={D(2026, 3, 10): "holiday", D(2026, 2, 17): "workday"})
    assert own.day_type(D(2026, 3, 10)) is DayType.holiday
    assert own.day_type(D(2026, 2, 17)) is DayType.ordinary
    assert DayCalendar().day_type(D(2026, 3, 10)) is DayType.ordinary
    listed = {day: (kind, source) for day, kind, source in own.days(2026)}
    assert listed[D(2026, 3, 10)] == (DayType.holiday, "community")
    assert listed[D(2026, 2, 17)] == (DayType.ordinary, "community")
    assert listed[D(2026, 2, 16)] == (DayType.holiday, "statutory")
    with pytest.raises(CalendarError):
        DayCalendar("Mars/Olympus")
    with pytest.raises(CalendarError):
        DayCalendar(own={D(2026, 3, 10): "party"})


START_MS = SPRING_FESTIVAL_MS - 19 * DAY_MS  # 27 Jan 2026 local: 14 days to train, scored from 10 Feb
TRAIN_END_MS = START_MS + 14 * DAY_MS
EMPTY = [OperatingChange(SPRING_FESTIVAL_MS, demand_factor=0.1)]
"""The residents leave for the Spring Festival: a tenth of the usual passages, trips, load."""


def _found(kind: str, calendar: DayCalendar | None, **options: object) -> list[str]:
    frame, _ = single_device(kind, f"b1-{kind}-1", days=24, seed=5, start_ms=START_MS, changes=EMPTY,
                             **options)
    frame.calendar = calendar
    detector = DETECTORS[kind]
    baseline = detector.fit_baseline(frame.window(START_MS, TRAIN_END_MS), detector.hyper())
    return [d.detector for d in detector.score(frame, baseline, {}, from_ms=TRAIN_END_MS)]


@pytest.mark.parametrize(("kind", "channel"), [("gate", "gate.passages_missing"),
                                               ("meter", "meter.energy_deficit_1d")])
def test_an_empty_building_on_a_holiday_is_not_judged(kind: str, channel: str) -> None:
    """Fixed instants (the scorer reads no clock): without the calendar the hour-of-week normal
    raises the empty building; with it those hours are not judged."""
    assert channel in _found(kind, None)
    assert channel not in _found(kind, DayCalendar())


def test_hardware_channels_still_judge_a_holiday() -> None:
    """A phase lost on the second day of the Spring Festival is still found within the hour."""
    onset = (SPRING_FESTIVAL_MS + DAY_MS + 5 * HOUR_MS - START_MS) / DAY_MS
    found = _found("meter", DayCalendar(), fault="phase_loss", fault_start_day=onset, fault_params={"phase": 2},
                   fault_hours=6.0)
    assert "meter.phase_loss" in found
    assert "meter.energy_deficit_1d" not in found


def test_a_holiday_is_not_learnt_as_a_normal_week() -> None:
    """A training window over the holiday leaves its hours out of the hour-of-week fit."""
    frame, _ = single_device("gate", "b1-gate-1", days=24, seed=5, start_ms=START_MS, changes=EMPTY)
    gate = DETECTORS["gate"]
    window_end = SPRING_FESTIVAL_MS + 5 * DAY_MS
    blind = gate.fit_baseline(frame.window(window_end - 14 * DAY_MS, window_end), gate.hyper())
    frame.calendar = DayCalendar()
    seeing = gate.fit_baseline(frame.window(window_end - 14 * DAY_MS, window_end), gate.hyper())
    assert seeing["passages_per_day"] > 1.5 * blind["passages_per_day"]


def test_a_leak_that_starts_in_the_festival_is_found_in_the_festival() -> None:
    """More water than a normal week on a holiday is a leak all the more: the leak channels judge
    holidays (the empty building only hides a *lack* of demand)."""
    onset_day = (SPRING_FESTIVAL_MS + DAY_MS - START_MS) / DAY_MS  # 16 Feb, the festival's second day
    frame, _ = single_device("pump", "b1-pump-1", days=24, seed=5, start_ms=START_MS, changes=EMPTY,
                             fault="pressure_loss", fault_start_day=onset_day,
                             fault_params={"leak_max_m3h": 25.0, "ramp_hours": 72.0})
    frame.calendar = DayCalendar()
    pump = DETECTORS["pump"]
    baseline = pump.fit_baseline(frame.window(START_MS, TRAIN_END_MS), pump.hyper())
    found = [d for d in pump.score(frame, baseline, {}, from_ms=TRAIN_END_MS) if d.fault == "pressure_loss"]
    assert found
    assert found[0].detected_ms < SPRING_FESTIVAL_MS + 9 * DAY_MS  # before the residents are back


def test_a_window_over_the_festival_keeps_the_previous_baseline() -> None:
    """Refitting on the few ordinary days a holiday leaves would put a weekday's shape into the
    weekend's slots; the baseline fitted before the holiday stays (``held: holiday``)."""
    from cloud.analytics import retrain

    frame, _ = single_device("meter", "b1-meter-1", days=24, seed=5, start_ms=START_MS, changes=EMPTY)
    frame.calendar = DayCalendar()
    meter = DETECTORS["meter"]
    before = meter.fit_baseline(frame.window(START_MS, TRAIN_END_MS), meter.hyper())
    over = frame.window(SPRING_FESTIVAL_MS - 10 * DAY_MS, SPRING_FESTIVAL_MS + 4 * DAY_MS)
    decision = retrain.decide(meter, over, meter.hyper(), reference=before, previous=before, open_detection=False,
                              repaired=False)
    assert decision.held == "holiday"
    assert decision.baseline is before
    # one make-up Saturday in the window is not enough to hold: it is left out of the fit
    calm = frame.window(SPRING_FESTIVAL_MS - 14 * DAY_MS, SPRING_FESTIVAL_MS)
    assert retrain.decide(meter, calm, meter.hyper(), reference=before, previous=before, open_detection=False,
                          repaired=False).held is None
