"""Feature pipelines on small generated data: causal, NaN-aware, and right on known inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.analytics.detectors import episodes
from cloud.analytics.features import (
    carried,
    cusum,
    daily_sum,
    day_kind_profile,
    ewma,
    hour_of_week,
    lower_median_within,
    median_of_last,
    rising_run,
    robust_center_scale,
    seasonal_profile,
    settled_ewma,
    sustained,
    trailing_mean,
)
from cloud.analytics.frames import DAY_MS, HOUR_MS, HourlyFrame, counter_increase, from_rollup_rows

MONDAY_MIDNIGHT_CST = 4 * DAY_MS - 8 * HOUR_MS  # 1970-01-05 00:00 +08:00


def test_ewma_skips_nan_and_converges() -> None:
    out = ewma(np.array([np.nan, 1.0, np.nan, 3.0]), 0.5)
    assert np.isnan(out[0])
    assert out.tolist()[1:] == [1.0, 1.0, 2.0]


def test_a_settled_ewma_is_not_judged_on_a_few_hours() -> None:
    """Issue 15: six start-up hours 8 % high and then the pump at a new setpoint (hours not judged)
    made a plain EWMA sit at 8 % — an episode opened in a cell's warm-up and handed over as a
    false "bearings" work order. Settled, the statistic waits for a time constant of inputs."""
    values = np.concatenate([np.full(6, 0.08), np.full(50, np.nan)])
    assert np.nanmax(ewma(values, 1 / 24)) == pytest.approx(0.08)
    assert np.isnan(settled_ewma(values, 1 / 24, 24)).all()
    # after n inputs it is their exponentially weighted mean, not the first input's echo
    steady = settled_ewma(np.array([1.0, 0.0, 0.0, np.nan]), 0.5, 2)
    assert np.isnan(steady[0])
    np.testing.assert_allclose(steady[1:], [1 / 3, 1 / 7, 1 / 7])
    with pytest.raises(ValueError):
        settled_ewma(values, 0.0, 1)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=5, max_size=60), st.integers(1, 4))
def test_features_are_causal(values: list[float], cut: int) -> None:
    """Appending future hours never changes the past: what the lead-time measurement relies on."""
    series = np.array(values)
    prefix = series[: len(values) - cut]
    for func in (lambda x: ewma(x, 0.2), lambda x: settled_ewma(x, 0.2, 3), lambda x: cusum(x, 0.5),
                 lambda x: cusum(x, 0.5, cap=2.0), lambda x: trailing_mean(x, 5),
                 lambda x: median_of_last(x, 3),
                 lambda x: rising_run(x).astype(float)):
        np.testing.assert_allclose(func(series)[: prefix.size], func(prefix))


def test_cusum_detects_a_shift_larger_than_the_drift_only() -> None:
    small = cusum(np.full(100, 0.4), drift=0.5)
    large = cusum(np.full(100, 1.5), drift=0.5)
    assert small.max() == 0.0
    assert large[-1] == pytest.approx(100.0)


def test_a_capped_cusum_forgets_a_past_shift_within_cap_over_drift_steps() -> None:
    """The energy CUSUM is capped so a drift that ended stops showing within days (issue 15)."""
    shifted = np.concatenate([np.full(200, 0.2), np.zeros(100)])
    capped = cusum(shifted, drift=0.03, cap=2.0)
    assert capped.max() == pytest.approx(2.0)
    assert capped[200 + 67] == 0.0  # 2.0 / 0.03 ≈ 67 steps after the shift ended
    assert cusum(shifted, drift=0.03)[200 + 67] > 30.0  # uncapped: weeks of carry-over


def test_trailing_mean_is_a_window_that_forgets_what_left_it() -> None:
    values = np.concatenate([np.full(72, 0.1), np.full(72, 0.0)])
    values[5] = np.nan
    out = trailing_mean(values, 72)
    assert np.isnan(out[:35]).all()  # fewer than half of the 72 hours seen
    assert out[71] == pytest.approx(0.1)
    assert out[72 + 71] == 0.0  # three days on, nothing of the first block is left


def test_a_value_read_on_some_hours_is_carried_across_the_others() -> None:
    nan = np.nan
    out = carried(np.array([nan, nan, 1.2, nan, nan, 0.9, nan]))
    assert np.isnan(out[:2]).all()  # nothing read yet
    assert out[2:5].tolist() == [1.2, 1.2, 1.2]
    assert out[5:].tolist() == [0.9, 0.9]
    assert np.isnan(carried(np.array([nan, nan]))).all()
    assert carried(np.empty(0)).size == 0


def test_the_median_of_the_last_values_lets_one_odd_hour_pass_and_holds_across_unread_hours() -> None:
    """Issue 15: one night hour whose every sample caught a refill (3.7 × the mean flow) must not
    move the night statistic, a floor that stays must — on the hours read, whatever lies between."""
    nan = np.nan
    values = np.array([0.0, nan, 0.0, 3.7, nan, nan, 0.0, 0.5, nan, 0.5, 0.5])
    out = median_of_last(values, 3)
    assert np.isnan(out[:3]).all()  # fewer than three values seen
    assert out[3] == 0.0  # the odd hour passed unnoticed
    assert out[6] == 0.0
    assert np.isnan(out[[4, 5, 8]]).all()  # unread hours are not judged
    assert out[7] == 0.5  # with the odd hour, two of the last three are high
    assert out[9] == 0.5
    assert out[10] == 0.5
    assert np.isnan(median_of_last(np.array([1.0, nan]), 3)).all()


def test_the_lower_median_within_a_night_never_reads_the_night_before() -> None:
    """Issue 15: a raised 04:00 and the next night's raised 00:00 are two of three across nights,
    one of each night; a floor held two hours of one night moves it (the lower of two, then the
    median of three), and a night's first hour is read on its own."""
    nan = np.nan
    values = np.array([0.0, 0.0, 0.5, nan, 0.5, 0.0, 0.0, nan, 0.5, 0.5, 0.5, 0.0])
    nights = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    out = lower_median_within(values, nights, 3)
    assert np.isnan(out[[3, 7]]).all()  # unread hours are not judged
    assert out[0] == 0.0
    assert out[1] == 0.0
    assert out[2] == 0.0
    assert out[4] == 0.5  # the night's first hour alone
    assert out[5] == 0.0  # not 0.5: the raised hour of the night before is not in the window
    assert out[6] == 0.0
    assert out[8] == 0.5
    assert out[9] == 0.5  # the lower of two raised hours
    assert out[10] == 0.5
    assert out[11] == 0.5
    assert np.isnan(lower_median_within(np.array([nan, nan]), np.array([0, 0]), 3)).all()


def test_robust_center_scale_ignores_outliers() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(10.0, 2.0, 2000)
    values[:50] = 1e6
    center, scale = robust_center_scale(values)
    assert center == pytest.approx(10.0, abs=0.2)
    assert scale == pytest.approx(2.0, rel=0.1)


def test_hour_of_week_is_local_monday_zero() -> None:
    times = np.array([MONDAY_MIDNIGHT_CST, MONDAY_MIDNIGHT_CST + 25 * HOUR_MS, MONDAY_MIDNIGHT_CST + 7 * DAY_MS])
    assert hour_of_week(times).tolist() == [0, 25, 0]


def test_seasonal_profile_learns_weekday_hour_and_falls_back() -> None:
    hours = 14 * 24
    times = MONDAY_MIDNIGHT_CST + np.arange(hours, dtype=np.int64) * HOUR_MS
    slots = hour_of_week(times)
    values = (slots % 24).astype(float) + np.where(slots >= 120, 100.0, 0.0)  # weekend +100
    values[slots == 5] = np.nan  # Monday 05:00 never seen → same hour of other days
    median, _ = seasonal_profile(values, times)
    assert median[3] == 3.0
    assert median[120 + 3] == 103.0
    assert median[5] == pytest.approx(5.0)  # fallback: median over the other weekdays' hour 5
    values[slots == 120 + 7] = np.nan  # Saturday 07:00 never seen → Sunday's, not the weekdays'
    median, _ = seasonal_profile(values, times)
    assert median[120 + 7] == 107.0


def test_a_weekend_hour_seen_once_or_never_keeps_the_weekend_shape() -> None:
    """A meter's first window in the Spring Festival keeps two weekend days; a weekend hour that
    lost one of its two values to a missing reading took every day's median — the weekday's — and
    the meters raised energy excess on the festival's weekends (issue 15). One value of its own
    kind of day is kept; an hour with none is interpolated from its kind's neighbouring hours."""
    hours = 14 * 24
    times = MONDAY_MIDNIGHT_CST + np.arange(hours, dtype=np.int64) * HOUR_MS
    slots = hour_of_week(times)
    values = (slots % 24).astype(float) + np.where(slots >= 120, 100.0, 0.0)  # weekend +100
    days = (times - MONDAY_MIDNIGHT_CST) // DAY_MS
    values[(days == 12) | (days == 13)] = np.nan  # the second weekend is a holiday: not fitted
    values[(days == 5) & (slots % 24 == 10)] = np.nan  # Saturday 10:00 missing: Sunday's is left
    values[(days < 7) & (slots >= 120) & (slots % 24 == 14)] = np.nan  # no weekend 14:00 at all
    median, _ = day_kind_profile(values, times)
    assert median[3] == 3.0
    assert median[120 + 10] == 110.0
    assert median[144 + 14] == pytest.approx(114.0)  # between 13:00 and 15:00 of the weekend
    assert median[14] == 14.0


def test_daily_sum_and_rising_run() -> None:
    times = MONDAY_MIDNIGHT_CST + np.arange(72, dtype=np.int64) * HOUR_MS
    starts, sums = daily_sum(np.ones(72), times)
    assert sums.tolist() == [24.0, 24.0, 24.0]
    assert starts[0] == MONDAY_MIDNIGHT_CST
    assert rising_run(np.array([1.0, 2.0, np.nan, 3.0, 2.0, 4.0])).tolist() == [0, 1, 1, 2, 0, 1]
    assert sustained(np.array([True, True, False, True, True, True]), 2).tolist() == [
        False, True, False, False, True, True]


def test_counter_increase_handles_resets_gaps_and_the_first_hour() -> None:
    frame = HourlyFrame("d", "elevator", 0, 5,
                        max={"run_count": np.array([10.0, 15.0, np.nan, 30.0, 2.0])},
                        min={"run_count": np.array([4.0, 11.0, np.nan, 16.0, 0.0])},
                        avg={"run_count": np.zeros(5)})
    assert counter_increase(frame, "run_count").tolist()[:2] == [6.0, 5.0]
    out = counter_increase(frame, "run_count")
    assert np.isnan(out[2])
    assert out[3] == 14.0  # after a gap only the hour's own increase: the gap's belongs to no hour we have
    assert out[4] == 0.0


def test_from_rollup_rows_builds_a_dense_frame() -> None:
    rows = [(HOUR_MS, "current", 5.0, 4.0, 6.0), (3 * HOUR_MS, "current", None, None, None),
            (99 * HOUR_MS, "current", 1.0, 1.0, 1.0)]
    frame = from_rollup_rows("p", "pump", rows, start_ms=0, end_ms=4 * HOUR_MS)
    assert frame.hours == 4
    assert np.isnan(frame.avg["current"][0])
    assert frame.avg["current"][1] == 5.0
    assert frame.max["current"][1] == 6.0
    part = frame.window(HOUR_MS, 3 * HOUR_MS)
    assert part.hours == 2
    assert part.start_ms == HOUR_MS
    assert part.avg["current"][0] == 5.0


def test_episodes_open_once_and_need_the_clear_level() -> None:
    stat = np.array([0.0, 0.5, 1.2, 1.5, np.nan, 1.3, 0.8, 0.4, 1.1, 1.2])
    assert episodes(stat, limit=1.0, min_hours=2, clear_ratio=0.5) == [(0, 3), (7, 9)]


def test_the_seasonal_profile_is_the_per_slot_robust_centre_and_scale() -> None:
    # computed for all 168 slots at once (one sort); must equal robust_center_scale slot by slot,
    # including the fallbacks for slots with too few values (same hour of the same kind of day,
    # then of any day)
    from cloud.analytics.features import hour_of_week, robust_center_scale, seasonal_profile

    rng = np.random.default_rng(4)
    for hours in (0, 30, 200, 336, 900):
        values = np.round(rng.normal(10.0, 2.0, hours), 1)
        values[rng.random(hours) < 0.3] = np.nan
        times = (np.arange(hours, dtype=np.int64) + 17) * 3_600_000
        median, sigma = seasonal_profile(values, times)
        slots = hour_of_week(times)
        valid = ~np.isnan(values)
        for slot in range(168):
            picked = values[valid & (slots == slot)]
            if picked.size < 2:
                picked = values[valid & (slots % 24 == slot % 24) & ((slots >= 120) == (slot >= 120))]
            if picked.size < 2:
                picked = values[valid & (slots % 24 == slot % 24)]
            expected = robust_center_scale(picked) if picked.size else (np.nan, np.nan)
            np.testing.assert_array_equal([median[slot], sigma[slot]], expected)


def test_standby_is_a_long_still_stretch_and_never_an_hour_that_ran() -> None:
    from cloud.analytics.features import standby_hours

    # duty days run 06–23 (a 7-hour night's sleep, not standby); day 3 is a standby day
    day = np.r_[np.zeros(6), np.full(17, 0.5), 0.0]
    ran = np.r_[day, day, np.zeros(24), day]
    past = standby_hours(ran, 12)
    whole = standby_hours(ran, 12, look_ahead=True)
    assert not (past | whole)[ran > 0].any()  # an hour the pump ran is never hidden
    assert not past[6:47].any()  # the duty pump's night is judged
    assert not whole[:47].any()
    # training hides the whole still stretch (hours 47–77); scoring from its 13th still hour on
    assert whole.nonzero()[0].tolist() == list(range(47, 78))
    assert [h for h in np.flatnonzero(past) if h >= 6] == list(range(59, 78))
    # causal: cutting the series leaves the earlier hours alone
    assert (standby_hours(ran[:64], 12) == past[:64]).all()
    # unknown hours count as "not seen running"
    assert standby_hours(np.full(30, np.nan), 12)[12:].all()
    assert standby_hours(np.zeros(0), 12).shape == (0,)
