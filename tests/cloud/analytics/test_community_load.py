"""A meter judged against its community on holidays (issue 15): a drift that begins in the Spring
Festival, when every building's load drops, is found before it crosses the 15 % cost-control
band; the healthy meters of the same community raise nothing; a drifting meter does not vote on
what the community's load is."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import psycopg
import pytest

from bench.analytics_eval import single_device
from cloud.analytics.daycalendar import DayCalendar
from cloud.analytics.detectors import DETECTORS
from cloud.analytics.detectors.meter import COMMUNITY_LOAD, MIN_PEERS, community_load
from cloud.analytics.frames import DAY_MS, HOUR_MS, HourlyFrame
from cloud.analytics.jobs import score, shipped_limits, train
from simulators.labelled_fleet import COST_CONTROL_BAND, OperatingChange
from tests.support.analytics import add_device, load_rollup

SPRING_FESTIVAL_MS = 1_771_084_800_000
"""2026-02-15 00:00 in Beijing: the first of the 9 days off."""
START_MS = SPRING_FESTIVAL_MS - 16 * DAY_MS
TRAIN_END_MS = START_MS + 14 * DAY_MS
DRIFT_START_DAY = 17.5  # 16 Feb, 12:00: the second day of the festival
RAMP_HOURS = 150.0
THRESHOLD_MS = START_MS + int((DRIFT_START_DAY * 24 + RAMP_HOURS * COST_CONTROL_BAND / 0.20) * HOUR_MS)
"""When the drift crosses the 15 % band (the label's lead-time reference): 21 Feb, 04:30 in Beijing."""
FESTIVAL = [OperatingChange(SPRING_FESTIVAL_MS, demand_factor=0.85),
            OperatingChange(SPRING_FESTIVAL_MS + 9 * DAY_MS, demand_factor=1 / 0.85)]
"""The evaluation's holiday: every building's common-area load drops by 15 % and comes back."""


def _community() -> list[HourlyFrame]:
    frames = []
    for index in range(7):
        drift = index == 0
        frame, _ = single_device("meter", f"b{index + 1}-meter-1", days=24, seed=40 + index, start_ms=START_MS,
                                 changes=FESTIVAL, fault="energy_drift" if drift else None,
                                 fault_start_day=DRIFT_START_DAY,
                                 fault_params={"percent": 20.0, "ramp_hours": RAMP_HOURS})
        frame.calendar = DayCalendar()
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def community() -> list[HourlyFrame]:
    return _community()


def _excess(frames: list[HourlyFrame], *, peers: bool) -> dict[str, list[int]]:
    detector = DETECTORS["meter"]
    params = detector.hyper(shipped_limits()["meter"])
    baselines = [detector.fit_baseline(f.window(START_MS, TRAIN_END_MS), params) for f in frames]
    load = detector.peer_feature(frames, baselines, params)
    found: dict[str, list[int]] = {}
    for frame, baseline in zip(frames, baselines, strict=True):
        scored = detector.with_peer_feature(frame, load) if peers else frame
        found[frame.device] = [d.detected_ms for d in detector.score(scored, baseline, params, from_ms=TRAIN_END_MS)
                               if d.detector.startswith("meter.energy_excess")]
    return found


def test_a_drift_starting_in_the_spring_festival_is_found_before_its_band(community: list[HourlyFrame]) -> None:
    found = _excess(community, peers=True)
    drifting = found.pop("b1-meter-1")
    assert drifting
    assert min(drifting) <= THRESHOLD_MS, "the drift must be found before it crosses 15 %"
    # the other meters emptied with the festival: against their community nothing is in excess
    assert found == {f.device: [] for f in community[1:]}


def test_without_the_community_the_festival_hides_the_drift(community: list[HourlyFrame]) -> None:
    """What the peers fixed: against its own ordinary week, a +20 % drift on a load 15 % down
    looks normal until the festival ends (the late detections of the evaluation)."""
    drifting = _excess(community, peers=False)["b1-meter-1"]
    assert not drifting or min(drifting) > THRESHOLD_MS


def test_the_explanation_says_the_holiday_load_was_taken_into_account(community: list[HourlyFrame]) -> None:
    detector = DETECTORS["meter"]
    params = detector.hyper(shipped_limits()["meter"])
    baselines = [detector.fit_baseline(f.window(START_MS, TRAIN_END_MS), params) for f in community]
    frame = detector.with_peer_feature(community[0], detector.peer_feature(community, baselines, params))
    first = min(detector.score(frame, baselines[0], params, from_ms=TRAIN_END_MS), key=lambda d: d.detected_ms)
    assert "本小区其他电表" in first.message
    assert "community's holiday load" in first.message
    load = first.evidence[COMMUNITY_LOAD]
    assert load is not None
    assert 0.8 < load < 0.95


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


async def test_the_service_scores_a_meter_with_its_communitys_load(conn: psycopg.AsyncConnection[Any],
                                                                   community: list[HourlyFrame]) -> None:
    """Through PostgreSQL: ``train`` then ``score`` (pinned times) load the community's meters and
    find the festival drift before its band, and nothing on the meters that only emptied."""
    for frame in community:
        device = await add_device(conn, "c-peers", frame.device.split("-")[0], frame.device, "meter", "eastron-sdm630")
        await load_rollup(conn, device, frame)
    await conn.commit()
    await train(conn, _at(START_MS), _at(TRAIN_END_MS), kinds=["meter"], community="c-peers")
    result = await score(conn, _at(START_MS + 24 * DAY_MS), since=_at(TRAIN_END_MS), community="c-peers",
                         health=False)
    excess = [d for d in result.detections if d.detector.startswith("meter.energy_excess")]
    assert {d.device for d in excess} == {"b1-meter-1"}
    assert min(d.detected_ms for d in excess) <= THRESHOLD_MS


def _counter_frame(device: str, kwh: np.ndarray) -> HourlyFrame:
    counter = 1000.0 + np.cumsum(kwh)
    return HourlyFrame(device=device, kind="meter", start_ms=START_MS, hours=kwh.size,
                       avg={"energy_import": counter}, min={"energy_import": counter - kwh},
                       max={"energy_import": counter})


def test_a_drifting_meter_does_not_vote_on_the_communitys_load() -> None:
    hours = 10 * 24
    flat = {"hour_of_week_kwh": [1.0] * 168}
    params = DETECTORS["meter"].hyper()
    rng = np.random.default_rng(3)
    healthy = [_counter_frame(f"m{i}", 0.85 * (1 + rng.normal(0, 0.05, hours))) for i in range(6)]
    drifting = [_counter_frame(f"d{i}", np.full(hours, 0.85 * 1.25)) for i in range(3)]
    load = community_load(healthy + drifting, [flat] * 9, params)
    # three of nine meters 25 % up would pull a plain median to the 6th of 9; they do not vote
    # once their last three days stand out
    assert abs(float(np.nanmedian(load[4 * 24:])) - 0.85) < 0.02
    few = community_load(healthy[:MIN_PEERS - 1], [flat] * (MIN_PEERS - 1), params)
    assert np.isnan(few).all(), "too few meters: no community load (holidays are judged as before)"
    assert np.isnan(community_load(healthy, [None] * 6, params)).all(), "meters without a baseline do not count"
    with pytest.raises(ValueError):
        community_load([healthy[0], _counter_frame("short", np.ones(10))], [flat, flat], params)


def test_a_meter_under_an_open_detection_does_not_vote() -> None:
    """The drifts still under the vote's 5 % pull a plain median up (issue 15: 29 of a community's
    70 meters drifted in the evaluation's Spring-Festival week, and the load read ~1 % high); a
    meter the detector already flags leaves the vote from the hour its detection opens."""
    hours = 10 * 24
    flat = {"hour_of_week_kwh": [1.0] * 168}
    detector = DETECTORS["meter"]
    params = detector.hyper(shipped_limits()["meter"])
    rng = np.random.default_rng(5)
    healthy = [_counter_frame(f"m{i}", 1 + rng.normal(0, 0.03, hours)) for i in range(6)]
    drifting = [_counter_frame(f"d{i}", 1.045 * (1 + rng.normal(0, 0.03, hours))) for i in range(3)]
    community = healthy + drifting
    baselines: list[dict[str, Any] | None] = [flat] * len(community)
    plain = community_load(community, baselines, params)
    cleaned = detector.peer_feature(community, baselines, params)
    opened = [detector.open_hours(detector.statistics(frame, flat, params), params) for frame in drifting]
    assert all(mask.any() for mask in opened), "each +4.5 % meter is flagged by its own CUSUM"
    after = max(int(np.argmax(mask)) for mask in opened) + 1
    assert float(np.nanmean(plain[after:])) > 1.008, "under the vote's 5 %, they still pull the median up"
    assert abs(float(np.nanmean(cleaned[after:])) - 1.0) < 0.004
    assert np.array_equal(cleaned[:24], plain[:24], equal_nan=True), "before any detection, the same load"
