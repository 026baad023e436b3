"""Energy meters: seasonal baseline by kind of day × hour with a robust band, plus phase loss.

Consumption of a building's common areas (lifts, pumps, lighting, ventilation) repeats by hour of
day and by kind of day, so "normal" for this hour is the median of the same hour over the
weekdays (or the weekend days) of the meter's training window
(:func:`cloud.analytics.features.day_kind_profile`, stored as the 168 hour-of-week slots).
Single hours are noisy; money is lost over days, so the channels compare *trailing sums*
against the baseline's sums over the same hours:

- ``energy_excess_1d`` / ``energy_deficit_1d``: trailing 24 h ratio − 1. Their limit is capped at
  the property cost-control rule — an energy indicator more than **15 %** away from its normal
  range always raises a warning — and may be lower when the training fleet shows the meter's
  normal day-to-day spread is small;
- ``energy_excess_3d``: trailing 72 h ratio − 1, whose spread is smaller, so a slow drift is
  caught days before it reaches the hard threshold;
- ``energy_excess_cusum``: Page's CUSUM of each hour's ratio to its normal (issue 15): a short
  ramp accumulates hour by hour instead of waiting for the 24-hour sum to clear its limit;
- ``phase_loss``: one phase's lowest voltage in the hour below half the meter's normal voltage
  while another phase is normal (3-phase meters only).

On holidays and make-up workdays the ordinary week is not "normal" (issue 15), so there the excess
channels compare the meter with its **peers**: :func:`community_load` is the median, over the
community's meters, of each meter's energy against its own hour-of-week normal, and a holiday hour
is expected to use ``normal × community load`` (see :meth:`MeterDetector.statistics`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, TypeGuard

import numpy as np
import numpy.typing as npt

from cloud.analytics.detectors.base import Channel, Detector, Params, Scored
from cloud.analytics.errors import ModelFormatError, NotEnoughData
from cloud.analytics.features import cusum, day_kind_profile, hour_of_week, trailing_sum
from cloud.analytics.frames import Array, HourlyFrame, counter_increase, occupancy

COST_RULE_BAND = 0.15
"""Property cost control: an energy indicator > 15 % away from its normal range is a warning."""
COMMUNITY_LOAD = "community_load"
"""The frame column that carries :func:`community_load` (a feature of the frame, like its calendar:
the caller that loads a meter's frame attaches it, scoring stays a pure function of the frame)."""
PEER_VOTE_LIMIT = 0.05
"""A meter whose last 3 days ran this much above the community's load (relative to each one's own
normal) does not vote on the community's load: about the 3-day excess channel's limit (0.048)."""
CUSUM_DRIFT = 0.03
"""The hourly CUSUM's slack: half the spread of one hour's energy against its normal (~6 % on the
calibration fleet), so ordinary hours drain the sum and a drift of more than 3 % fills it."""
CUSUM_CLIP = 0.25
"""One hour's ratio enters the CUSUM clipped to ±25 % (about four of its spreads): a counter that
catches up after a gap, or a near-zero normal hour, must not fill the sum alone; a drift (at most
+20 % on the fleet) passes unclipped."""
CUSUM_FALSE_ALARMS = 0.04
"""False alarms per device-week the CUSUM may raise on the training fleet — eight times the other
channels' 0.005: it is the channel that must be early, and the issue's budget is 0.05 for all."""
CUSUM_CAP = 2.0
"""The CUSUM never holds more than 2 (two thirds of a day of a +20 % drift, or ~67 hours of the
slack): once the excess stops — a repair, or the end of a fault — the sum drains within three days
instead of carrying weeks of a past drift into hours that are normal again."""
MAX_GAP_HOURS = 24
"""The longest gap whose counter increase :func:`across_gaps` spreads over its hours (a day: the
evaluation's outages last 6 hours; a longer one is a day or more the meter was not read)."""
MIN_PEERS = 5
"""Meters whose energy an hour's community load needs; with fewer, the hour has none (NaN) and a
holiday hour is judged against the ordinary week as before. Five: the median of five ratios
with one drifting meter among them still sits inside the healthy ones' spread."""


def hourly_energy(frame: HourlyFrame, params: Params) -> Array:
    """kWh per hour from the import-energy counter, else from the mean active power (W).

    An hour right after a gap (the hour before it has no reading) is NaN, not judged: its counter
    increase is only the part of the hour between its own first and last readings
    (:func:`~cloud.analytics.frames.counter_increase`), a third short at the simulated 20-minute
    poll, by how much in the field nobody can tell from the rollup. Read as a whole hour, each one
    was a −25 % hour (the CUSUM's clip) that drained the hourly CUSUM by a third of its limit and
    pulled the trailing sums down: with 2 % of hours missing and 6-hour outages it made two of the
    evaluation's energy drifts late (issue 15; docs/analytics.md). The calibration fleet has no
    missing hours, so the limits stand. Scoring then spreads the counter's increase over such a
    gap (:func:`across_gaps`); fitting does not."""
    metric = params["energy_metric"]
    energy = counter_increase(frame, metric)
    if np.isnan(energy).all():
        return frame.column(params["power_metric"]) / 1000.0
    previous = np.concatenate([[np.nan], frame.column(metric, "max")[:-1]])
    return np.where(np.isnan(previous), np.nan, energy)


def across_gaps(frame: HourlyFrame, energy: Array, expected: Array, params: Params) -> Array:
    """``energy`` with the hours a short gap left unread filled from the counter: the increase from
    the last reading before the gap to the first hour after it is spread over the gap's hours and
    that hour in proportion to what each was ``expected`` to use.

    Why (issue 15): the counter keeps counting while the rollup misses an hour, so the energy of
    the gap is known as a whole, only not hour by hour. Not judged (:func:`hourly_energy` leaves a
    missing hour and the one after it NaN), two hours per missing one told the hourly CUSUM
    nothing — on the Spring-Festival drift of the evaluation eight of the 61 hours before its 15 %
    band, and the drift was found after the band. Spread over its hours the block reads at its
    true ratio to normal: no hour gains or loses energy, and the trailing sums count the block
    whole. Only for scoring: a training window's NaN hours may be masked fault hours, whose
    energy must not be learnt. Not over more than :data:`MAX_GAP_HOURS` (a day's shape is what
    the spreading assumes), nor where the counter went backwards (a replaced meter)."""
    top = frame.column(params["energy_metric"], "max")
    read = np.flatnonzero(~np.isnan(top))
    if read.size < 2:
        return energy
    out = energy.copy()
    steps = np.diff(read)
    gaps = np.flatnonzero((steps > 1) & (steps <= MAX_GAP_HOURS + 1))  # only the gaps: scoring's hot path
    for before, after in zip(read[gaps].tolist(), read[gaps + 1].tolist(), strict=True):
        block = slice(before + 1, after + 1)
        weights = expected[block]
        increase = float(top[after] - top[before])
        total = float(weights.sum())
        if increase >= 0.0 and np.isfinite(weights).all() and total > 1e-6:
            out[block] = increase * weights / total
    return out


def community_load(frames: Sequence[HourlyFrame], baselines: Sequence[Params | None], params: Params, *,
                   silent: Sequence[npt.NDArray[np.bool_] | None] | None = None) -> Array:
    """Per hour, the median over a community's meters of ``energy / hour-of-week normal`` (each
    meter against its own baseline; NaN where fewer than :data:`MIN_PEERS` meters have both).

    Why peers (issue 15): on the Spring Festival a building's load drops by some 15 %, and a meter
    drifting +20 % from the day before the festival used about what an ordinary week would use —
    against its own normal it looked fine, and its drift was found only when the festival ended,
    after it had crossed the 15 % cost-control band (50 of the 57 late energy-drift detections on
    8 evaluation fleets). The other meters of the community empty with it, a drift moves one: the
    median of their ratios is what the festival does to everyone's load, hour by hour (its level
    and its shape), which no 14-day training window can learn. The meter itself is one of the
    meters (a leave-one-out median per meter would cost a median per meter per hour for a
    difference the median does not make with :data:`MIN_PEERS` or more).

    ``frames`` cover the same hours (the caller spans them alike); a meter without a baseline
    yet does not count, nor does one in the hours ``silent`` marks for it (those under its own
    open detection: :meth:`MeterDetector.peer_feature`)."""
    if not frames:
        return np.empty(0)
    first = frames[0]
    ratios: list[Array] = []
    for index, (frame, baseline) in enumerate(zip(frames, baselines, strict=True)):
        if frame.start_ms != first.start_ms or frame.hours != first.hours:
            raise ValueError(f"{frame.device}: community frames must cover the same hours")
        if not _has_profile(baseline):
            continue
        slots = np.asarray(baseline["hour_of_week_kwh"], dtype=np.float64)[
            hour_of_week(frame.times_ms, params["utc_offset_ms"])]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(slots > 1e-6, hourly_energy(frame, params) / slots, np.nan)
        mute = None if silent is None else silent[index]
        ratios.append(ratio if mute is None else np.where(mute, np.nan, ratio))
    if len(ratios) < MIN_PEERS:
        return np.full(first.hours, np.nan)
    stacked = np.vstack(ratios)
    first_pass = _median_of(stacked)
    # a meter already using more than the community over its last 3 days does not vote: the
    # drifts the excess channels look for only raise a meter's load, and on the evaluation fleets
    # the drifting meters (up to a sixth of a community in a festival week) pulled the per-hour
    # median up by ~3 % — a third of what a drift shows before its band. Per hour the ratios are
    # too noisy (~10 %) to tell a drifting meter; over 3 days (~2 %) it stands out.
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.vstack([trailing_sum(np.where(np.isnan(first_pass), np.nan, row), 72)
                           / trailing_sum(np.where(np.isnan(row), np.nan, first_pass), 72) - 1.0 for row in stacked])
    voters = np.where(level > PEER_VOTE_LIMIT, np.nan, stacked)
    second = _median_of(voters)
    return np.where(np.isnan(second), first_pass, second)


def _has_profile(baseline: Params | None) -> TypeGuard[Params]:
    """Whether ``baseline`` holds the 168 hour-of-week slots a meter is judged against."""
    profile = None if baseline is None else baseline.get("hour_of_week_kwh")
    return isinstance(profile, list) and len(profile) == 168


def _median_of(stacked: Array) -> Array:
    """Per hour (column), the median of the rows with a value; NaN under :data:`MIN_PEERS`."""
    valid = (~np.isnan(stacked)).sum(axis=0)
    out = np.full(stacked.shape[1], np.nan)
    enough = valid >= MIN_PEERS
    if enough.any():
        out[enough] = np.nanmedian(stacked[:, enough], axis=0)
    return out


def with_community_load(frame: HourlyFrame, load: Array) -> HourlyFrame:
    """``frame`` with its community's load as the :data:`COMMUNITY_LOAD` column (a shallow copy:
    the other columns are shared)."""
    if load.shape != (frame.hours,):
        raise ValueError(f"community load has shape {load.shape}, the frame {frame.hours} hours")
    return HourlyFrame(device=frame.device, kind=frame.kind, start_ms=frame.start_ms, hours=frame.hours,
                       avg={**frame.avg, COMMUNITY_LOAD: load}, min=dict(frame.min), max=dict(frame.max),
                       community=frame.community, calendar=frame.calendar)


class MeterDetector(Detector):
    name: ClassVar[str] = "meter"
    kind: ClassVar[str] = "meter"
    channels: ClassVar[tuple[Channel, ...]] = (
        Channel("energy_excess_1d", "energy_drift", floor=0.06, min_hours=3),
        Channel("energy_excess_3d", "energy_drift", floor=0.04, min_hours=3),
        Channel("energy_excess_cusum", "energy_drift", floor=0.3, min_hours=1, target_rate=CUSUM_FALSE_ALARMS),
        Channel("energy_deficit_1d", "energy_drop", floor=0.06, min_hours=3),
        Channel("phase_loss", "phase_loss", floor=0.5, min_hours=1),
    )
    defaults: ClassVar[Params] = {
        "energy_metric": "energy_import",
        "power_metric": "power_total",
        "phase_metrics": ["voltage_l1", "voltage_l2", "voltage_l3"],
        "min_training_hours": 7 * 24,
        "utc_offset_ms": 8 * 3_600_000,
        "cusum_drift": CUSUM_DRIFT,
        "cusum_clip": CUSUM_CLIP,
        "cusum_cap": CUSUM_CAP,
    }

    peers: ClassVar[bool] = True

    def peer_feature(self, frames: Sequence[HourlyFrame], baselines: Sequence[Params | None],
                     params: Params) -> Array:
        """:func:`community_load` without the meters under an open detection.

        Why (issue 15): a meter the detector already flags is not what the community's load is.
        The vote in :func:`community_load` leaves out meters more than 5 % above the others over
        three days; drifts still under that voted, and with 29 of a community's 70 meters
        drifting in the Spring-Festival week of the evaluation they pulled the median ~1 % up —
        the one energy drift of 2,172 still found after its 15 % band. So the load is computed
        twice: once with every meter, then without each meter's hours under an open episode of
        its own channels judged against that first load. Both are causal (an episode counts from
        the hour it was confirmed, never from its onset, which is known only afterwards) and
        functions of the frames alone, so scoring stays independent of when and how often it runs
        (:mod:`cloud.analytics.timeline`). One pass only: a second would rest on the first's
        silences, for a difference of a few meters. Where fewer than :data:`MIN_PEERS` meters are
        left (a whole community flagged at once), the hour has no load and is judged against the
        meter's own week, as without peers."""
        params = self.hyper(params)
        everyone = community_load(frames, baselines, params)
        silent = [self.open_hours(self.statistics(with_community_load(frame, everyone), baseline, params), params)
                  if _has_profile(baseline) else None
                  for frame, baseline in zip(frames, baselines, strict=True)]
        return community_load(frames, baselines, params, silent=silent)

    def with_peer_feature(self, frame: HourlyFrame, feature: Array) -> HourlyFrame:
        return with_community_load(frame, feature)

    def limit(self, params: Params, channel: Channel) -> float:
        found = super().limit(params, channel)
        if channel.name.endswith("_1d"):
            return min(found, COST_RULE_BAND)  # the cost-control rule always holds
        return found

    def fit_baseline(self, frame: HourlyFrame, params: Params) -> Params:
        params = self.hyper(params)
        energy = occupancy(frame, hourly_energy(frame, params))  # a holiday is not a normal week
        valid = int((~np.isnan(energy)).sum())
        if valid < params["min_training_hours"]:
            raise NotEnoughData(f"{frame.device}: {valid} hours of energy data in the training window "
                                f"(need {params['min_training_hours']})")
        # "normal" per hour of the *kind of day* (Monday–Friday, Saturday–Sunday), not per weekday
        # (issue 15): a 14-day window holds two samples of each weekday-hour, and their error was
        # about a third of the daily ratio's spread — a fleet limit above what the load's own
        # wander needs, and a drift found hours after its 15 % band on short ramps. Pooled (ten
        # weekday samples), the calibration on seed 1 lowers the 24-hour limit from 8.7 % to
        # 6.8 %. What this assumes: a common area's weekdays share one shape (lifts, pumps,
        # lighting follow the residents' working day); a building whose Mondays differ would see
        # that difference as excess or deficit
        median, sigma = day_kind_profile(energy, frame.times_ms, utc_offset_ms=params["utc_offset_ms"])
        volts = [frame.column(m) for m in params["phase_metrics"] if frame.has(m)]
        nominal = float(np.nanmedian(np.concatenate(volts))) if volts else float("nan")
        return {
            "hour_of_week_kwh": [round(float(v), 6) for v in median],
            "hour_of_week_sigma": [round(float(v), 6) for v in sigma],
            "voltage_nominal": nominal if np.isfinite(nominal) else None,
            "phases": len(volts),
            "daily_kwh": float(np.nansum(median) / 7.0),
        }

    def statistics(self, frame: HourlyFrame, baseline: Params, params: Params) -> Scored:
        try:
            profile = np.asarray(baseline["hour_of_week_kwh"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"meter baseline is missing or has a bad field: {exc}") from exc
        if profile.shape != (168,):
            raise ModelFormatError("meter baseline needs 168 hour-of-week values")
        # the calendar (issue 15): less energy than normal is not judged on holidays nor make-up
        # workdays (the trailing sums wait for enough ordinary hours); more energy than normal is
        # judged on holidays too (an emptied building that uses more is wasting it), not on make-up
        # days. Phase loss is the supply, not the occupancy, and is always judged.
        # Where the frame carries its community's load, the excess channels judge holidays and
        # make-up days against ``normal × community load`` — what the peers say this day does to
        # a meter's load — instead of the ordinary week (a drift hidden by the festival's drop is
        # seen the day it starts; a community whose residents come home for the festival raises
        # everyone's load, which the peers explain). Not the deficit channel: a building that
        # empties more than its neighbours on a holiday is not a fault, and no labelled fault
        # can tell how far apart buildings empty. Ordinary hours keep the meter's own normal, which
        # the limits were calibrated on
        slots = profile[hour_of_week(frame.times_ms, params["utc_offset_ms"])]
        peers = frame.column(COMMUNITY_LOAD)
        by_peers = frame.off_hours() & np.isfinite(peers)
        normal_now = np.where(by_peers, slots * peers, slots)
        raw = across_gaps(frame, hourly_energy(frame, params), normal_now, params)
        excess_energy = np.where(by_peers, raw, occupancy(frame, raw, holidays=False))
        stats: dict[str, Array] = {}
        context: dict[str, Array] = {"energy_kwh": raw, COMMUNITY_LOAD: np.where(by_peers, peers, np.nan)}
        with np.errstate(invalid="ignore", divide="ignore"):
            for side, energy, normal_kwh in (("", excess_energy, normal_now),
                                             ("low_", occupancy(frame, raw), slots)):
                expected = np.where(np.isnan(energy), np.nan, normal_kwh)
                for hours, tag in ((24, "1d"), (72, "3d")):
                    actual = trailing_sum(energy, hours)
                    normal = trailing_sum(expected, hours)
                    context[f"{side}ratio_{tag}"] = np.where(normal > 1e-6, actual / normal - 1.0, np.nan)
                    context[f"{side}actual_{tag}"] = actual
                    context[f"{side}normal_{tag}"] = normal
            context["expected_kwh"] = np.where(np.isnan(raw), np.nan, slots)
            stats["energy_excess_1d"] = context["ratio_1d"]
            stats["energy_excess_3d"] = context["ratio_3d"]
            stats["energy_deficit_1d"] = -context["low_ratio_1d"]
            # the hourly CUSUM (issue 15): the 24-hour ratio lags a ramp by half a day and judges it
            # against its own ±2 % day-to-day spread, so a drift ramping to +20 % over three days
            # crossed the 15 % band before the daily sum crossed its limit on 12 of 444 labels.
            # Page's CUSUM of each hour's excess over its normal (the same normal the excess channels
            # use: × community load on holidays) accumulates every hour above the slack; its limit is
            # calibrated on the training fleet like every channel's. See docs/analytics.md.
            clip = float(params["cusum_clip"])
            hourly = np.where(normal_now > 1e-6, excess_energy / normal_now - 1.0, np.nan)
            stats["energy_excess_cusum"] = cusum(np.clip(hourly, -clip, clip), float(params["cusum_drift"]),
                                                 cap=float(params["cusum_cap"]))
            context["cusum"] = stats["energy_excess_cusum"]
            nominal = baseline.get("voltage_nominal")
            phases = [frame.column(m, "min") for m in params["phase_metrics"] if frame.has(m)]
            if nominal and len(phases) >= 3:
                lows = np.vstack(phases)
                with warnings.catch_warnings():  # an hour with no voltage at all (missing) stays NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    worst = np.nanmin(lows, axis=0)
                    best = np.nanmax(lows, axis=0)
                loss = 1.0 - worst / float(nominal)
                # one phase gone while another is healthy; a whole-building outage is not a phase loss
                stats["phase_loss"] = np.where(best > 0.8 * float(nominal), loss, 0.0)
                context["worst_phase_v"] = worst
        return Scored(stats=stats, context=context)

    def explain(self, frame: HourlyFrame, channel: Any, hour: int, scored: Scored, baseline: Params) -> str:
        ctx = scored.context
        if channel.name == "phase_loss":
            volts, nominal = ctx["worst_phase_v"][hour], baseline["voltage_nominal"]
            return (f"电表 {frame.device}：一相电压降到 {volts:.0f} V（正常 {nominal:.0f} V）——"
                    f"缺相，请检查供电和断路器 / "
                    f"meter {frame.device}: one phase dropped to {volts:.0f} V "
                    f"(normal {nominal:.0f} V) — phase loss, check the supply and breakers")
        if channel.name == "energy_excess_cusum":
            return self._explain_cusum(frame, hour, scored)
        tag = "3d" if channel.name.endswith("3d") else "1d"
        span = "3 days" if tag == "3d" else "24 hours"
        side = "low_" if channel.name.startswith("energy_deficit") else ""
        ratio = ctx[f"{side}ratio_{tag}"][hour]
        actual = ctx[f"{side}actual_{tag}"][hour]
        normal = ctx[f"{side}normal_{tag}"][hour]
        direction = "more" if ratio > 0 else "less"
        advice = ("check for equipment left running, a failing motor or a metering fault" if ratio > 0
                  else "check for a tripped circuit, equipment out of service or a metering fault")
        span_zh = "3 天" if tag == "3d" else "24 小时"
        direction_zh = "多" if ratio > 0 else "少"
        advice_zh = ("请检查是否有设备未关、电机故障或计量异常" if ratio > 0
                     else "请检查是否跳闸、设备停运或计量异常")
        peers_zh, peers_en = _peers_note(ctx, hour)
        return (f"电表 {frame.device} 近 {span_zh}用电比平时{direction_zh} {abs(ratio) * 100:.0f}%"
                f"（{actual:.0f} kWh，本机同时段平时约 {normal:.0f} kWh{peers_zh}）——{advice_zh} / "
                f"meter {frame.device} used {abs(ratio) * 100:.0f}% {direction} energy than normal over the last "
                f"{span} ({actual:.0f} kWh vs {normal:.0f} kWh expected for these hours and weekdays{peers_en})"
                f" — {advice}")

    def _explain_cusum(self, frame: HourlyFrame, hour: int, scored: Scored) -> str:
        """The hourly CUSUM's message: what a butler can check — the last 24 hours in kWh against
        this meter's normal — and that it comes before the 15 % cost-control band."""
        ctx = scored.context
        actual, normal = ctx["actual_1d"][hour], ctx["normal_1d"][hour]
        if np.isfinite(actual) and np.isfinite(normal) and normal > 1e-6:
            extra = actual - normal
            figures_zh = f"近 24 小时 {actual:.0f} kWh，平时约 {normal:.0f} kWh，多 {extra / normal * 100:.0f}%"
            figures_en = (f"{actual:.0f} kWh over the last 24 hours where {normal:.0f} kWh is normal "
                          f"({extra / normal * 100:+.0f}%)")
        else:
            figures_zh, figures_en = "逐小时累计", "hour after hour"
        peers_zh, peers_en = _peers_note(ctx, hour)
        figures_zh, figures_en = figures_zh + peers_zh, figures_en + peers_en
        return (f"电表 {frame.device} 用电逐小时持续高于本机平时水平（{figures_zh}），尚未到 15% 管控线——"
                f"请检查是否有设备未关、电机故障或计量异常 / "
                f"meter {frame.device} has used more energy than its normal hour after hour ({figures_en}), "
                f"before the 15% cost-control band — check for equipment left running, a failing motor "
                f"or a metering fault")


def _peers_note(ctx: dict[str, Array], hour: int) -> tuple[str, str]:
    """The clause (zh, en) saying a holiday hour was judged against the community's load."""
    peers = float(ctx[COMMUNITY_LOAD][hour])
    if not np.isfinite(peers):
        return "", ""
    return (f"，节假日按本小区其他电表的用电水平（平时的 {peers * 100:.0f}%）折算",
            f", scaled to the community's holiday load ({peers * 100:.0f}% of normal across its meters)")
