"""Causal feature pipelines in numpy: every output at hour *t* uses only hours ``<= t``.

Causality is not a nicety here: the evaluation measures *when* a detection would have been
raised, so a feature that peeks at the future (a centred rolling median, a full-series z-score)
would inflate the lead time and make the score a lie. Functions take and return float64 arrays;
NaN means "no data" and is skipped (state carried over), never treated as zero.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from cloud.analytics.frames import DAY_MS, HOUR_MS, Array

MAD_TO_SIGMA = 1.4826
"""Scale of the median absolute deviation to a normal standard deviation."""


def ewma(values: Array, alpha: float) -> Array:
    """Exponentially weighted moving average; NaN inputs keep the previous state.

    The output is NaN until the first valid input.
    """
    if not 0 < alpha <= 1:
        raise ValueError("alpha must be in (0, 1]")
    out = np.full(values.shape, np.nan)
    state = np.nan
    for i, value in enumerate(values.tolist()):
        if not math.isnan(value):
            state = value if math.isnan(state) else state + alpha * (value - state)
        out[i] = state
    return out


def settled_ewma(values: Array, alpha: float, min_count: int) -> Array:
    """An EWMA that is NaN until ``min_count`` valid inputs, weighted from the first of them.

    Why (issue 15): :func:`ewma` starts at its first input, so for its first hours it is a single
    noisy hour, not a day's average. Scoring computes every cell's statistics from the cell's own
    origin (:mod:`cloud.analytics.timeline`), and an episode the warm-up opens and the statistic
    still shows open at the cell's first scored hour is recorded as a detection. On the evaluation,
    a pump whose setpoint changed two days after a cell's origin had its current residual frozen
    (hours at the new setpoint are not judged) at the level of a handful of start-up hours, and the
    next cell's hand-over raised a false "bearings" work order at 55 % of the limit. Weighted from
    the first input (``Σ w·x / Σ w``, the bias-corrected average: after ``n`` inputs it is their
    exponentially weighted mean, not the first input's echo) and judged only after ``min_count``
    inputs (one time constant), the warm-up cannot open an episode on a few hours.
    """
    if not 0 < alpha <= 1:
        raise ValueError("alpha must be in (0, 1]")
    out = np.full(values.shape, np.nan)
    weighted = weight = 0.0
    count = 0
    for i, value in enumerate(values.tolist()):
        if not math.isnan(value):
            weighted = (1 - alpha) * weighted + alpha * value
            weight = (1 - alpha) * weight + alpha
            count += 1
        if count >= min_count:
            out[i] = weighted / weight
    return out


def standby_hours(ran: Array, hours: int, *, look_ahead: bool = False) -> npt.NDArray[np.bool_]:
    """Hours a machine of a duty/standby pair stands by: hours of a still stretch (no running at
    all) longer than ``hours`` — causally, the hours from the ``hours + 1``-th still hour on; with
    ``look_ahead``, every hour of such a stretch.

    ``ran`` is the running time per hour (> 0: it ran; 0: it stood still; NaN: unknown, counted as
    not seen running). Why (issue 15): booster sets alternate duty between the pumps of a pair
    daily or weekly; on standby a pump does not run at all, so an hour-of-week normal of flow or
    running time that mixes duty and standby hours reads every duty hour as a leak. A standby
    turn keeps the pump still for a whole day or week (≥ 24 h), while a duty pump of a residential
    set runs every evening and morning (its night's sleep is some 6–8 hours), so the length of the
    still stretch tells standby from a sleeping night without knowing the pair or a duty register.
    (A day-level mask was tried and failed: a hand-over at 08:00 makes every local day part duty,
    part standby. A window of ±``hours`` around each hour was considered: it needs ``2·hours + 1``
    still hours and so hides only the middle of a daily standby turn.)

    Scoring is causal (every statistic at hour *t* uses only hours ``<= t``,
    :mod:`cloud.analytics.timeline`), so it cannot know a still stretch will last: the first
    ``hours`` hours of a standby turn are judged — they read *below* normal, which an excess
    channel never alarms on. Training may look ahead (the window's hours are all in the past), so
    the whole turn leaves the normal. What it cannot see: a pump out of service for a day is
    "standby" too (nothing to judge while it stands still), and a mask only ever hides hours in
    which the machine did not run, so a leak that makes it run (longer, or at night) is never hidden.
    """
    seen = np.nan_to_num(ran, nan=0.0) > 0
    idx = np.arange(seen.size)
    last_run = np.maximum.accumulate(np.where(seen, idx, -1)) if seen.size else idx
    if not look_ahead:
        return np.asarray(idx - last_run > hours, dtype=bool)
    next_run = np.minimum.accumulate(np.where(seen, idx, seen.size)[::-1])[::-1] if seen.size else idx
    return np.asarray(~seen & (next_run - last_run - 1 > hours), dtype=bool)


def cusum(values: Array, drift: float, *, reset_below: float | None = None, cap: float | None = None) -> Array:
    """One-sided upper CUSUM ``S_t = max(0, S_{t-1} + x_t - drift)``; NaN keeps ``S``.

    ``drift`` (the "k" of Page's CUSUM) is the slack per step: a mean shift smaller than it never
    accumulates, one larger than it grows linearly, so ``S`` crossing a limit ``h`` detects a
    persistent shift of ``d`` after about ``h / (d - drift)`` steps — the lever that trades lead
    time against false alarms. ``reset_below``: values below it reset ``S`` to 0 (a repair).
    ``cap``: ``S`` never exceeds it, so a past shift drains in ``cap / drift`` steps once it ends.
    """
    out = np.empty(values.shape)
    state = 0.0
    for i, value in enumerate(values.tolist()):
        if not math.isnan(value):
            reset = reset_below is not None and value < reset_below
            state = 0.0 if reset else max(0.0, state + value - drift)
            if cap is not None:
                state = min(state, cap)
        out[i] = state
    return out


def trailing_sum(values: Array, hours: int, *, min_valid: float = 0.8) -> Array:
    """Causal sum over the last ``hours`` hours, NaN while fewer than ``min_valid`` of them have data."""
    valid = ~np.isnan(values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(valid, values, 0.0))])
    ccnt = np.concatenate([[0], np.cumsum(valid)])
    idx = np.arange(values.size)
    lo = np.maximum(0, idx + 1 - hours)
    sums = csum[idx + 1] - csum[lo]
    counts = ccnt[idx + 1] - ccnt[lo]
    out = np.where(counts >= min_valid * hours, sums, np.nan)
    return np.asarray(out, dtype=np.float64)


def trailing_mean(values: Array, hours: int, *, min_valid: float = 0.5) -> Array:
    """Causal mean of the valid values among the last ``hours`` hours, NaN while fewer than
    ``min_valid`` of them have data (a window, not an EWMA: what left it no longer counts)."""
    valid = ~np.isnan(values)
    count = trailing_sum(np.where(valid, 1.0, np.nan), hours, min_valid=min_valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(trailing_sum(values, hours, min_valid=min_valid) / count, dtype=np.float64)


def median_of_last(values: Array, count: int) -> Array:
    """Causal median of the last ``count`` valid values, NaN where the value itself is NaN (the
    statistic holds its state across the hours it does not read) and until ``count`` were seen.

    For a series judged on a few hours a day (the night): one odd hour never moves the median,
    a change that holds for most of ``count`` hours does — where an EWMA takes a single outlier
    in and needs hours to let it out again."""
    valid = np.flatnonzero(~np.isnan(values))
    out = np.full(values.shape, np.nan)
    if valid.size >= count:
        packed = values[valid]
        windows = np.lib.stride_tricks.sliding_window_view(packed, count)
        out[valid[count - 1:]] = np.median(windows, axis=1)
    return out


def carried(values: Array) -> Array:
    """The last valid value at every hour (NaN before the first): a statistic read on some hours
    only (the busy ones), carried across the others."""
    index = np.where(np.isnan(values), 0, np.arange(values.size))
    np.maximum.accumulate(index, out=index)
    return np.asarray(values[index], dtype=np.float64)


def lower_median_within(values: Array, groups: npt.NDArray[np.int64], count: int) -> Array:
    """Causal lower median of the last ``count`` valid values *of the same group* (e.g. one night):
    a group's first value alone, then the lower of two, then the median of three; NaN where the
    value itself is NaN.

    Why not :func:`median_of_last` across groups (issue 15, 2026-12-06): at +24 % demand the edge
    hours of the night (04:00, then 00:00 of the next) no longer sleep, and a median of three that
    spans the two nights saw two raised hours of three — two hours over the limit, a work order on
    a pump without a leak (3 of the 20-seed run's 5 demand orders). A leak raises consecutive hours
    of one night, so the window never needs the night before. The lower of two, not their mean:
    after a raised first hour (a refill, a waking 00:00) a sleeping second hour reads as sleep, and
    an alarm needs two hours over its limit in a row; a leak holds both, and is seen an hour
    earlier than by a median that waits for a third."""
    valid = np.flatnonzero(~np.isnan(values))
    out = np.full(values.shape, np.nan)
    if valid.size == 0:
        return out
    packed, group = values[valid], groups[valid]
    position = np.arange(valid.size)
    first_of_group = np.maximum.accumulate(np.where(np.r_[True, group[1:] != group[:-1]], position, 0))
    for j in position:
        window = np.sort(packed[max(first_of_group[j], j - count + 1): j + 1])
        out[valid[j]] = window[(window.size - 1) // 2]
    return out


def robust_center_scale(values: Array, *, floor: float = 1e-9) -> tuple[float, float]:
    """Median and MAD-based sigma of the valid values (``(nan, nan)`` when there are none)."""
    valid = values[~np.isnan(values)]
    if valid.size == 0:
        return float("nan"), float("nan")
    center = float(np.median(valid))
    scale = float(np.median(np.abs(valid - center))) * MAD_TO_SIGMA
    return center, max(scale, floor)


def robust_z(values: Array, center: float, scale: float) -> Array:
    return (values - center) / scale


def hour_of_week(times_ms: npt.NDArray[np.int64], utc_offset_ms: int = 8 * HOUR_MS) -> npt.NDArray[np.int64]:
    """0..167 = weekday × 24 + hour in local time (Monday 00:00 = 0); the epoch was a Thursday."""
    local_hours = (times_ms + utc_offset_ms) // HOUR_MS
    return np.asarray((local_hours + 3 * 24) % 168, dtype=np.int64)


def day_kind_hour(slots: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Hour-of-week slots (0 = Monday 00:00) as hours of a kind of day: 0..23 the weekday (Monday–
    Friday) hours, 24..47 the weekend ones (slot 120 is Saturday 00:00)."""
    return np.asarray((slots >= 120) * 24 + slots % 24, dtype=np.int64)


SLOT_MIN_SAMPLES = 2
"""Values an hour-of-week slot needs before :func:`seasonal_profile` takes its own median (two
weeks of history give two); with fewer it falls back to the slot's kind of day."""


def day_kind_profile(
    values: Array, times_ms: npt.NDArray[np.int64], *, utc_offset_ms: int = 8 * HOUR_MS, min_samples: int = 4
) -> tuple[Array, Array]:
    """:func:`seasonal_profile` pooled by kind of day: every weekday slot gets the median of the
    same hour over Monday–Friday, every weekend slot the same hour over Saturday–Sunday (168 slots
    out, as the hour-of-week profile); slots of a kind with fewer than ``min_samples`` values fall
    back to :func:`seasonal_profile` — but never to another kind of day's shape: an hour whose kind
    has one value keeps it, one with none takes its kind's neighbouring hours (interpolated).

    Why not the other kind (issue 15): a meter's first window in the Spring Festival has two
    weekend days left (the make-up Saturday and the holidays are not fitted); a weekend hour that
    lost one of its two values to a missing reading fell through :func:`seasonal_profile` to the
    median of *every* day's hour — a weekday's: a Saturday 10:00 learnt little more than half its
    load. Judged against that, the meters raised energy excess on the festival's first scored day,
    its weekend and the weekend after it (the 20 Spring-Festival fleets' meters: 243 false alarms,
    54 with this). One value of the hour's own kind is off by its noise (~6 %), and the load's shape
    is smooth enough between neighbouring hours."""
    slots = hour_of_week(times_ms, utc_offset_ms)
    valid = ~np.isnan(values)
    med, sig, count = grouped_center_scale(values[valid], day_kind_hour(slots[valid]), 48)
    fallback_med, fallback_sig = seasonal_profile(values, times_ms, utc_offset_ms=utc_offset_ms)
    groups = day_kind_hour(np.arange(168))
    enough = count[groups] >= min_samples
    out = np.where(enough, med[groups], fallback_med)
    # seasonal_profile left its own kind where the kind's hour had fewer than SLOT_MIN_SAMPLES values
    for kind in (0, 24):
        hours = np.arange(24)
        seen = count[kind + hours] > 0
        if not seen.any():
            continue
        own = np.interp(hours, hours[seen], med[kind + hours[seen]], period=24)
        alone = (count[groups] < SLOT_MIN_SAMPLES) & (groups >= kind) & (groups < kind + 24)
        out[alone] = own[groups[alone] - kind]
    return out, np.where(enough, sig[groups], fallback_sig)


def seasonal_profile(
    values: Array, times_ms: npt.NDArray[np.int64], *, utc_offset_ms: int = 8 * HOUR_MS,
    min_samples: int = SLOT_MIN_SAMPLES
) -> tuple[Array, Array]:
    """Median and MAD-sigma per hour of week (168 slots) from a training window.

    Slots with fewer than ``min_samples`` values fall back to the same hour of the same kind of
    day (Monday–Friday, or Saturday–Sunday), then to the same hour of any day, so two weeks of
    history are enough and a holiday does not leave a hole. Why the kind of day first (issue 15):
    a training window that lost its holiday and make-up days to the calendar has one Sunday
    left; falling back to every day's median put a weekday's evening into Sunday's slots, and
    the meters' energy excess fired on the Sunday after the Spring Festival (the quick
    evaluation's false energy-excess alarms went from 40 to 14 with this fallback, and to none
    once retraining also held the baseline over holidays, :mod:`cloud.analytics.retrain`).

    Computed for all slots at once (:func:`grouped_center_scale`): the same figures as
    :func:`robust_center_scale` per slot, but one sort instead of 168 ``np.median`` calls — the
    daily retrain of every device runs this several times, and it was the retrain's largest cost
    in the fleet evaluation (issue 15).
    """
    slots = hour_of_week(times_ms, utc_offset_ms)
    valid = ~np.isnan(values)
    med, sig, count = grouped_center_scale(values[valid], slots[valid], 168)
    med[count < min_samples] = np.nan
    sig[count < min_samples] = np.nan
    missing = np.isnan(med)
    if missing.any():
        kind_med, kind_sig, kind_count = grouped_center_scale(values[valid], day_kind_hour(slots[valid]), 48)
        wanted = np.flatnonzero(missing)
        groups = day_kind_hour(wanted)
        usable = kind_count[groups] >= min_samples
        med[wanted[usable]], sig[wanted[usable]] = kind_med[groups[usable]], kind_sig[groups[usable]]
    missing = np.isnan(med)
    if missing.any():
        day_med, day_sig, day_count = grouped_center_scale(values[valid], slots[valid] % 24, 24)
        hours = np.flatnonzero(missing) % 24
        usable = day_count[hours] > 0
        fill = np.flatnonzero(missing)[usable]
        med[fill], sig[fill] = day_med[hours[usable]], day_sig[hours[usable]]
    return med, sig


def _grouped_median(values: Array, groups: npt.NDArray[np.int64], n_groups: int) -> tuple[Array, npt.NDArray[np.int64]]:
    """Median of ``values`` per group ``0..n_groups-1`` (NaN for an empty group) and the counts."""
    order = np.lexsort((values, groups))
    ordered = values[order]
    count = np.bincount(groups, minlength=n_groups).astype(np.int64)
    start = np.cumsum(count) - count
    out = np.full(n_groups, np.nan)
    has = count > 0
    low = start[has] + (count[has] - 1) // 2
    high = start[has] + count[has] // 2
    out[has] = (ordered[low] + ordered[high]) / 2
    return out, count


def grouped_center_scale(values: Array, groups: npt.NDArray[np.int64], n_groups: int, *,
                         floor: float = 1e-9) -> tuple[Array, Array, npt.NDArray[np.int64]]:
    """:func:`robust_center_scale` of each group of the (valid) ``values``: medians, MAD-sigmas
    (NaN for an empty group) and the group sizes."""
    center, count = _grouped_median(values, groups, n_groups)
    mad, _ = _grouped_median(np.abs(values - center[groups]), groups, n_groups)
    scale = np.maximum(mad * MAD_TO_SIGMA, floor)
    return center, scale, count


def daily_sum(values: Array, times_ms: npt.NDArray[np.int64], *, utc_offset_ms: int = 8 * HOUR_MS,
              min_hours: int = 20) -> tuple[npt.NDArray[np.int64], Array]:
    """Sum per local day (day start in epoch ms, sums); days with < ``min_hours`` valid hours are NaN."""
    if values.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    days = (times_ms + utc_offset_ms) // DAY_MS
    first, last = int(days.min()), int(days.max())
    count = last - first + 1
    sums = np.zeros(count)
    seen = np.zeros(count, dtype=np.int64)
    valid = ~np.isnan(values)
    np.add.at(sums, days[valid] - first, values[valid])
    np.add.at(seen, days[valid] - first, 1)
    sums[seen < min_hours] = np.nan
    starts = (np.arange(first, last + 1, dtype=np.int64) * DAY_MS) - utc_offset_ms
    return starts, sums


def rising_run(values: Array, *, tolerance: float = 0.0) -> npt.NDArray[np.int64]:
    """For each step, how many consecutive steps so far the series has risen (NaN breaks nothing).

    Used on daily means of a residual: "rising for 4 days" in a butler's message is this count.
    """
    out = np.zeros(values.shape, dtype=np.int64)
    previous = np.nan
    run = 0
    for i, value in enumerate(values.tolist()):
        if not math.isnan(value):
            if not math.isnan(previous):
                run = run + 1 if value > previous + tolerance else 0
            previous = value
        out[i] = run
    return out


def first_true(mask: npt.NDArray[np.bool_]) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def sustained(mask: npt.NDArray[np.bool_], hours: int) -> npt.NDArray[np.bool_]:
    """True at *t* when ``mask`` has been true for the last ``hours`` steps (inclusive)."""
    if hours <= 1:
        return mask.copy()
    run = np.zeros(mask.shape, dtype=np.int64)
    count = 0
    for i, flag in enumerate(mask.tolist()):
        count = count + 1 if flag else 0
        run[i] = count
    return run >= hours
