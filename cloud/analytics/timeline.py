"""Detections that do not depend on when, or how often, the scorer runs.

The problem this solves (issue 15): scoring used to read a fixed look-back before each pass
(``since - 5 days``), so every pass started its EWMAs somewhere else. An episode could be
confirmed inside one pass's look-back while the pass that covered that hour — warmed up six
hours earlier — had not confirmed it; the detection fell between two passes and was lost, and
which anchors lost it depended on the wall clock.

Two ways out were possible: persist every detector's internal state (each EWMA, counter and
run length) and advance it hour by hour, or compute from a *fixed origin*. The detectors are
written as causal array pipelines (every statistic at hour *t* uses only hours ``<= t``,
:mod:`cloud.analytics.features`), so a fixed origin gives the same guarantee without turning six
detectors into incremental state machines: statistics computed from the same origin agree on
every hour they share, however far the frame reaches. The origin cannot be fixed for ever (the
frame would grow without bound), so time is cut into **cells** on a grid anchored at the Unix
epoch, not at the scorer's clock:

- cell *k* scores the hours ``[k·CELL + WARMUP, (k+1)·CELL + WARMUP)`` from a frame that starts at
  ``k·CELL`` — its statistics have ``WARMUP`` (5 days) to settle and the frame is at most
  ``CELL + WARMUP`` (12 days) long;
- an episode raised inside a cell's hours is a detection at the hour it was confirmed;
- at a cell's first hour the state is handed over: a detection still open from the previous
  cell stays open if the new cell's statistics also show the episode open there (it is the same
  episode, not a new one), and is cleared at that hour otherwise; an episode the new cell sees
  open at its first hour that nothing had open is a detection at that hour (so an episode that
  the previous cell never confirmed is still recorded, never dropped).

Every event is a function of the data, the model and the grid only, so scoring in 1-hour,
6-hour or 5-day steps, restarting between steps, or catching up after an outage gives the same
detections as one pass over the whole range (``tests/cloud/analytics/test_timeline.py`` checks
it with hypothesis). What carries over from one call to the next is only what is in the
database: the open detections and the last hour scored per device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cloud.analytics.detection import Detection
from cloud.analytics.detectors.base import Channel, Detector, Params, Scored, episode_spans, finite
from cloud.analytics.frames import DAY_MS, HOUR_MS, HourlyFrame

WARMUP_MS = 5 * DAY_MS
"""Hours a cell's statistics settle before they count (EWMAs of ~1 day, trailing 3-day sums)."""
CELL_MS = 7 * DAY_MS
"""Length of a cell's scored range; a frame is at most ``CELL_MS + WARMUP_MS`` long."""


def cell_of(hour_ms: int) -> int:
    """The cell whose scored range holds the hour starting at ``hour_ms``."""
    return (hour_ms - WARMUP_MS) // CELL_MS


def cell_origin(cell: int) -> int:
    """Where the frame of ``cell`` starts (its statistics' origin)."""
    return cell * CELL_MS


def cell_range(cell: int) -> tuple[int, int]:
    """``[start, end)`` of the hours ``cell`` scores."""
    start = cell * CELL_MS + WARMUP_MS
    return start, start + CELL_MS


@dataclass(frozen=True, slots=True)
class OpenDetection:
    """A detection open in the store: its name (``pump.current_excess``) and when it was raised."""

    detector: str
    detected_ms: int


@dataclass(frozen=True, slots=True)
class Raise:
    detection: Detection


@dataclass(frozen=True, slots=True)
class Clear:
    detector: str
    detected_ms: int
    """Identifies the detection being cleared (raised at this time)."""
    at_ms: int
    """Start of the first hour the statistic was back below its clear level (or the cell's first hour)."""


Event = Raise | Clear


@dataclass(slots=True)
class Advance:
    """The events of :func:`advance` in time order, and the open detections at ``end_ms``."""

    events: list[Event] = field(default_factory=list)
    open: dict[str, OpenDetection] = field(default_factory=dict)


FrameLoader = Callable[[int, int], HourlyFrame]
"""``(start_ms, end_ms) -> frame``: the device's hourly frame over that range."""


def cell_events(detector: Detector, frame: HourlyFrame, baseline: Params, params: Params, cell: int,
                open_before: Mapping[str, OpenDetection]) -> Advance:
    """The events of one cell from its frame (which starts at the cell's origin and may end
    anywhere inside the cell: the statistics are causal, so a shorter frame gives the same events
    for the hours it has), given the detections open when the cell begins."""
    if frame.start_ms != cell_origin(cell):
        raise ValueError(f"cell {cell}'s frame must start at {cell_origin(cell)}, not {frame.start_ms}")
    full = detector.hyper(params)
    scored = detector.statistics(frame, baseline, full)
    begin_ms, end_ms = cell_range(cell)
    first = frame.hour_of(begin_ms)
    last = min(frame.hours, frame.hour_of(end_ms))
    out = Advance(open=dict(open_before))
    timed: list[tuple[int, int, Event]] = []  # (time, order, event): clears before raises at one instant
    for channel in detector.channels:
        name = f"{detector.name}.{channel.name}"
        stat = scored.stats.get(channel.name)
        carried = out.open.get(name)
        limit = detector.limit(full, channel)
        spans = episode_spans(stat, limit, channel.min_hours, channel.clear_ratio) if stat is not None else []
        entering = [s for s in spans if s[1] < first and (s[2] is None or s[2] >= first)]
        if carried is not None and not entering:
            # the new origin's statistics do not show the episode any more: it ended with the old cell
            timed.append((begin_ms, 0, Clear(name, carried.detected_ms, begin_ms)))
            del out.open[name]
            carried = None
        for onset, raised, closed in spans:
            if closed is not None and closed < first:
                continue
            if raised >= last:
                continue
            if raised < first:
                if carried is not None:
                    current = carried  # the same episode, continued from the previous cell
                else:
                    detected = frame.start_ms + (first + 1) * HOUR_MS
                    assert stat is not None
                    det = _detection(detector, frame, channel, onset, first, detected, float(stat[first] / limit),
                                     scored, baseline)
                    current = OpenDetection(name, detected)
                    timed.append((detected, 1, Raise(det)))
            else:
                assert stat is not None
                detected = frame.start_ms + (raised + 1) * HOUR_MS  # known once the hour is complete
                det = _detection(detector, frame, channel, onset, raised, detected, float(stat[raised] / limit),
                                 scored, baseline)
                current = OpenDetection(name, detected)
                timed.append((detected, 1, Raise(det)))
            out.open[name] = current
            carried = None
            if closed is not None and closed < last:
                at = frame.start_ms + closed * HOUR_MS
                timed.append((at, 0, Clear(name, current.detected_ms, at)))
                del out.open[name]
    timed.sort(key=lambda item: (item[0], item[1]))
    out.events = [event for _, _, event in timed]
    return out


def _detection(detector: Detector, frame: HourlyFrame, channel: Channel, onset: int, hour: int, detected_ms: int,
               score: float, scored: Scored, baseline: Params) -> Detection:
    return Detection(
        device=frame.device,
        detector=f"{detector.name}.{channel.name}",
        fault=channel.fault,
        start_ms=frame.start_ms + onset * HOUR_MS,
        detected_ms=detected_ms,
        score=score,
        message=with_onset(detector.explain(frame, channel, hour, scored, baseline), frame.start_ms + onset * HOUR_MS,
                           int(detector.hyper().get("utc_offset_ms", 8 * HOUR_MS))),
        evidence={k: finite(v[hour]) for k, v in scored.context.items()},
    )


def with_onset(message: str, onset_ms: int, utc_offset_ms: int) -> str:
    """The explanation with "since when" in the community's local time, in both languages
    (``中文 / English``: the Chinese part gets its clause before the separator)."""
    import datetime as dt

    zone = dt.timezone(dt.timedelta(milliseconds=utc_offset_ms))
    local = dt.datetime.fromtimestamp(onset_ms / 1000, zone)
    hours = utc_offset_ms // HOUR_MS
    zh, sep, en = message.partition(" / ")
    if not sep:
        return f"{message} (since {local:%Y-%m-%d %H:%M} UTC{hours:+d})"
    return (f"{zh}（自 {local.month} 月 {local.day} 日 {local:%H:%M} 起）{sep}{en} "
            f"(since {local:%Y-%m-%d %H:%M} UTC{hours:+d})")


def advance(detector: Detector, load: FrameLoader, baseline: Params, params: Params, *, from_ms: int, end_ms: int,
            open_before: Mapping[str, OpenDetection], not_before_ms: int | None = None) -> Advance:
    """Events of every cell from the one holding ``from_ms`` up to ``end_ms`` (exclusive, whole
    hours), given the detections open when the first of those cells began.

    Events of the first cell that precede ``from_ms`` are returned too: the caller applies them
    idempotently, which is how an episode confirmed while nothing was scoring is still recorded.
    ``not_before_ms`` (when the model came into force): episodes confirmed earlier are not raised
    — those hours were the previous model's to judge; re-reading them with a model fitted at a
    new operating point raised false work orders in the evaluation (issue 15). Their *clears* are
    still returned: such an episode is usually one the previous model raised (the same detector
    and hour, re-derived here), and when its end falls under the new model only this model can
    close it — dropping the clear with the raise left it open until the next cell's hand-over, up
    to a week, holding the device's retraining ("open detection") and swallowing the next episode
    of that channel (issue 15: a meter's second phase loss). A clear of an episode nobody raised
    closes nothing (the store ignores it).
    """
    out = Advance(open=dict(open_before))
    if end_ms <= from_ms:
        return out
    dropped: set[tuple[str, int]] = set()
    for cell in range(cell_of(from_ms), cell_of(end_ms - HOUR_MS) + 1):
        stop = cell_range(cell)[1]
        frame = load(cell_origin(cell), min(stop, end_ms))
        step = cell_events(detector, frame, baseline, params, cell, out.open)
        for event in step.events:
            if (isinstance(event, Raise) and not_before_ms is not None
                    and event.detection.detected_ms < not_before_ms):
                dropped.add((event.detection.detector, event.detection.detected_ms))
                continue
            out.events.append(event)
        out.open = {k: v for k, v in step.open.items() if (v.detector, v.detected_ms) not in dropped}
    return out
