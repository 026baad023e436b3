"""The retraining decision for one device — shared by the service's job and the evaluation.

Why a pure function: the evaluation (``python -m bench analytics``) must measure what the
service does, not a re-implementation of it, and replaying 20 seeds × 4 start dates through
PostgreSQL would take days of CPU. So :func:`cloud.analytics.jobs.train` gathers the facts from
the database (the device's frame with its suspect hours masked, its healthy reference, its
previous baseline, whether a detection is open, whether it was repaired since the reference) and
this function decides; the evaluation gathers the same facts from its in-memory store.

What keeps a fault from becoming "normal" (issue 15):

- a device with an open detection keeps the baseline that raised it (a new model must not
  silence an open detection);
- hours under a detection episode or a work order are masked by the caller;
- each device has a healthy *reference* — its first weeks, the first weeks after a repair, or
  the first weeks at a new operating point (a setpoint change) — and a new baseline is accepted
  only while the training window still looks normal against it (:meth:`Detector.drift`), so wear
  slower than the daily retrain is not absorbed one retrain at a time.

And what keeps a holiday from becoming "normal", or from spoiling the weekly shape (issue 15): the
detectors leave holiday and make-up hours out of their hour-of-week fits, and a window that lost
more than :data:`MAX_OFF_SHARE` of its hours to the calendar keeps the previous baseline (held:
``holiday``) — fitted on fewer days, a weekend slot has one sample left or none, and the fit's
fallbacks put a weekday's shape into it: on the quick evaluation without the holiday demand drop,
refitting over the Mid-Autumn and National Day blocks raised 8 meters' energy excess in the same
hour. The previous baseline is at most a few weeks old when the window is clear again.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud.analytics.detectors.base import Detector, Params
from cloud.analytics.errors import NotEnoughData
from cloud.analytics.frames import HourlyFrame

MAX_OFF_SHARE = 0.15
"""Share of a training window's hours that may be holidays or make-up workdays before the previous
baseline is kept (≈ 2 days of 14: one make-up Saturday refits, a 3-day holiday block holds)."""


@dataclass(frozen=True, slots=True)
class Decision:
    baseline: Params | None
    """The baseline to store with the new model version (None: the device has none yet)."""
    new_reference: str | None = None
    """Why ``baseline`` also becomes the device's reference (``first``, ``repair``,
    ``operating point``), or None."""
    held: str | None = None
    """Why the previous baseline was kept (``open detection`` or the drifting channel)."""
    skipped: str | None = None
    """Why no baseline could be fitted (too little data)."""


def decide(detector: Detector, frame: HourlyFrame, params: Params, *, reference: Params | None,
           previous: Params | None, open_detection: bool, repaired: bool) -> Decision:
    """The device's baseline for the new model version; ``frame`` is the training window with the
    suspect hours already masked."""
    if open_detection and previous is not None:
        return Decision(previous, held="open detection")
    if previous is not None and frame.hours and float(frame.off_hours().mean()) > MAX_OFF_SHARE:
        return Decision(previous, held="holiday")
    try:
        fitted = detector.fit_baseline(frame, params)
    except NotEnoughData as exc:
        return Decision(previous, skipped=str(exc))
    if reference is None:
        return Decision(fitted, new_reference="first")
    if detector.context_key(fitted) != detector.context_key(reference):
        return Decision(fitted, new_reference="operating point")
    if repaired:
        return Decision(fitted, new_reference="repair")
    moved = detector.drift(frame, reference, params)
    if moved is not None:
        return Decision(previous if previous is not None else reference, held=moved)
    return Decision(fitted)
