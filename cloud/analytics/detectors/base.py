"""What every detector is: per-device baseline + fleet-calibrated channels + causal episodes.

A detector has three levels of learning, each stored as JSON (see :mod:`cloud.analytics.modelstore`):

1. **hyper-parameters** (``defaults``): smoothing spans, minimum durations, floors — fixed in code,
   documented in ``docs/analytics.md``;
2. **fleet calibration** (``calibrate``): each channel's alarm limit, learnt on a *training* fleet
   (its own seed) from the statistic's distribution in fault-free hours — the limit is the
   largest fault-free value times a margin, floored by a physical minimum, so the false-alarm
   rate on a similar fleet is near zero by construction and the evaluation (another seed) checks it;
3. **per-device baseline** (``fit_baseline``): what "normal" means for *this* pump or meter, fitted
   with scikit-learn / numpy on the device's own training window (its first weeks in service).

Scoring turns each channel's causal statistic into episodes: an episode opens at the first hour
the statistic stays above its limit for ``min_hours`` and closes when it falls below
``limit × clear_ratio`` — one detection per episode, so a slowly worsening pump produces one
planned work order, not one a day.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from cloud.analytics.evaluation import Detection
from cloud.analytics.frames import HOUR_MS, Array, HourlyFrame

Params = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Channel:
    """One anomaly statistic of a detector, mapped to the fault kind it points at."""

    name: str
    fault: str
    floor: float
    """The limit is never below this (a physical minimum: e.g. 6 % more current)."""
    margin: float = 1.25
    min_hours: int = 1
    clear_ratio: float = 0.5
    quantile: float = 1.0
    """Quantile of the fault-free statistic the limit is built on (1.0 = its maximum)."""


@dataclass(slots=True)
class Scored:
    """A detector's causal statistics for one device (one array per channel) + context for messages."""

    stats: dict[str, Array]
    context: dict[str, Array]


class Detector(ABC):
    """Base class; subclasses define ``name``, ``kind``, ``channels`` and the three methods."""

    name: ClassVar[str]
    kind: ClassVar[str]
    channels: ClassVar[tuple[Channel, ...]]
    defaults: ClassVar[Params] = {}
    format: ClassVar[str] = "json-v1"

    # -- per device ----------------------------------------------------------------------------
    @abstractmethod
    def fit_baseline(self, frame: HourlyFrame, params: Params) -> Params:
        """Fit "normal" for one device on its training window; raise NotEnoughData if impossible."""

    @abstractmethod
    def statistics(self, frame: HourlyFrame, baseline: Params, params: Params) -> Scored:
        """Causal per-hour statistics of every channel (NaN where not applicable)."""

    @abstractmethod
    def explain(self, frame: HourlyFrame, channel: Channel, hour: int, scored: Scored, baseline: Params) -> str:
        """One sentence a butler understands, for an episode raised at ``hour``."""

    # -- fleet ---------------------------------------------------------------------------------
    def hyper(self, params: Mapping[str, Any] | None = None) -> Params:
        merged = dict(self.defaults)
        if params:
            merged.update(params)
        return merged

    def calibrate(self, fault_free: Mapping[str, list[Array]], params: Params | None = None) -> Params:
        """Alarm limits from fault-free statistics gathered on the training fleet, per channel."""
        out = self.hyper(params)
        limits: dict[str, float] = {}
        for channel in self.channels:
            chunks = [c[~np.isnan(c)] for c in fault_free.get(channel.name, [])]
            values = np.concatenate(chunks) if chunks else np.empty(0)
            if values.size == 0:
                limits[channel.name] = channel.floor
                continue
            base = float(np.quantile(values, channel.quantile))
            limits[channel.name] = max(channel.floor, base * channel.margin)
        out["limits"] = limits
        return out

    def limit(self, params: Params, channel: Channel) -> float:
        limits: dict[str, float] = params.get("limits", {})
        return float(limits.get(channel.name, channel.floor))

    # -- scoring -------------------------------------------------------------------------------
    def score(
        self, frame: HourlyFrame, baseline: Params, params: Params, *, from_ms: int | None = None
    ) -> list[Detection]:
        """Detections raised in ``frame`` at or after ``from_ms`` (earlier hours only warm up state)."""
        params = self.hyper(params)
        scored = self.statistics(frame, baseline, params)
        first = 0 if from_ms is None else max(0, frame.hour_of(from_ms))
        found: list[Detection] = []
        for channel in self.channels:
            stat = scored.stats.get(channel.name)
            if stat is None:
                continue
            for onset, raised in episodes(stat, self.limit(params, channel), channel.min_hours, channel.clear_ratio):
                if raised < first:
                    continue
                found.append(Detection(
                    device=frame.device,
                    detector=f"{self.name}.{channel.name}",
                    fault=channel.fault,
                    start_ms=frame.start_ms + onset * HOUR_MS,
                    detected_ms=frame.start_ms + (raised + 1) * HOUR_MS,  # known once the hour is complete
                    score=float(stat[raised] / self.limit(params, channel)),
                    message=self.explain(frame, channel, raised, scored, baseline),
                    evidence={k: _finite(v[raised]) for k, v in scored.context.items()},
                ))
        return found


def _finite(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def episodes(stat: Array, limit: float, min_hours: int, clear_ratio: float) -> list[tuple[int, int]]:
    """``(onset_hour, raised_hour)`` of each episode of ``stat`` above ``limit``.

    Opens when the statistic has been above the limit for ``min_hours`` valid hours in a row
    (NaN hours neither extend nor break the run); closes when it drops below
    ``limit × clear_ratio``. The onset is the last hour the statistic was at or below zero before
    the raise (where the drift began), the raise is the hour the episode was confirmed.
    """
    found: list[tuple[int, int]] = []
    open_ = False
    run = 0
    last_quiet = 0
    for i, value in enumerate(stat.tolist()):
        if math.isnan(value):
            continue
        if open_:
            if value < limit * clear_ratio:
                open_ = False
                run = 0
                last_quiet = i
            continue
        if value <= 0:
            last_quiet = i
        if value > limit:
            run += 1
            if run >= min_hours:
                open_ = True
                found.append((last_quiet, i))
        else:
            run = 0
    return found
