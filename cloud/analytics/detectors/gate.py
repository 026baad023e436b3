"""Access gates: forced-open, held-open and tamper events, and passages against their baseline.

A gate reports its own events (ZKTeco event vocabulary): forced open, held open, tamper. Their
hourly presence is the ``forced_open``/``held_open``/``tamper`` channels and the health record's
event counts. Passages per hour against the hour-of-week baseline tell a gate that no longer
lets people through (``passages_missing``, robust z as for lifts).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cloud.analytics.detectors.base import Channel, Detector, Params, Scored
from cloud.analytics.detectors.flags import flag_present
from cloud.analytics.errors import NotEnoughData
from cloud.analytics.features import ewma, hour_of_week, seasonal_profile
from cloud.analytics.frames import Array, HourlyFrame, counter_increase, occupancy


def passages(frame: HourlyFrame, params: Params) -> Array:
    total = np.zeros(frame.hours)
    seen = np.zeros(frame.hours, dtype=bool)
    for metric in params["passage_metrics"]:
        part = counter_increase(frame, metric)
        seen |= ~np.isnan(part)
        total += np.nan_to_num(part)
    return np.where(seen, total, np.nan)


class GateDetector(Detector):
    name: ClassVar[str] = "gate"
    kind: ClassVar[str] = "gate"
    channels: ClassVar[tuple[Channel, ...]] = (
        Channel("forced_open", "forced_open", floor=0.5),
        Channel("held_open", "held_open", floor=0.5),
        Channel("tamper", "tamper", floor=0.5),
        Channel("passages_missing", "gate_blocked", floor=4.0, margin=1.3, min_hours=3, target_rate=0.0),
    )
    defaults: ClassVar[Params] = {
        "passage_metrics": ["passages_in", "passages_out"],
        "min_training_hours": 5 * 24,
        "ewma_alpha": 0.25,
        "utc_offset_ms": 8 * 3_600_000,
    }

    def fit_baseline(self, frame: HourlyFrame, params: Params) -> Params:
        params = self.hyper(params)
        count = occupancy(frame, passages(frame, params))  # a holiday is not a normal week
        valid = int((~np.isnan(count)).sum())
        if valid < params["min_training_hours"]:
            need = params["min_training_hours"]
            raise NotEnoughData(f"{frame.device}: {valid} hours with passage counters (need {need})")
        median, sigma = seasonal_profile(count, frame.times_ms, utc_offset_ms=params["utc_offset_ms"])
        return {
            "passages_hour_of_week": [round(float(v), 4) for v in median],
            "passages_sigma_hour_of_week": [round(float(max(s, 1.0)), 4) for s in sigma],
            "passages_per_day": float(np.nansum(median) / 7.0),
        }

    def statistics(self, frame: HourlyFrame, baseline: Params, params: Params) -> Scored:
        stats = {name: flag_present(frame, name) for name in ("forced_open", "held_open", "tamper")}
        count = passages(frame, params)
        slots = hour_of_week(frame.times_ms, params["utc_offset_ms"])
        expected = np.asarray(baseline["passages_hour_of_week"], dtype=np.float64)[slots]
        sigma = np.asarray(baseline["passages_sigma_hour_of_week"], dtype=np.float64)[slots]
        # holidays and make-up workdays: not judged (the hour-of-week normal does not describe them)
        z_missing = np.where(expected >= 4, (expected - occupancy(frame, count)) / sigma, np.nan)
        stats["passages_missing"] = ewma(z_missing, float(params["ewma_alpha"]))
        return Scored(stats=stats, context={"passages": count, "expected_passages": expected})

    def explain(self, frame: HourlyFrame, channel: Any, hour: int, scored: Scored, baseline: Params) -> str:
        words = {
            "forced_open": "was forced open",
            "held_open": "was held open too long",
            "tamper": "reported tampering",
        }
        words_zh = {"forced_open": "被强行打开", "held_open": "开门时间过长", "tamper": "报告被破坏"}
        if channel.name in words:
            return (f"门禁 {frame.device} {words_zh[channel.name]}——请检查门和门锁 / "
                    f"gate {frame.device} {words[channel.name]} — check the door and the lock")
        ctx = scored.context
        lo = max(0, hour - 3)
        people, usual, hours = (np.nansum(ctx["passages"][lo:hour + 1]),
                                np.nansum(ctx["expected_passages"][lo:hour + 1]), hour + 1 - lo)
        return (f"门禁 {frame.device} 近 {hours} 小时通行 {people:.0f} 人次，平时约 {usual:.0f} 人次——可能卡住或被锁 / "
                f"gate {frame.device} let {people:.0f} people through in the last "
                f"{hours} hours where about {usual:.0f} are usual "
                f"— it may be jammed or locked")
