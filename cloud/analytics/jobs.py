"""Train and score against the database: what ``guanjia cloud analytics train|score`` and the
scheduled cloud-service job run.

- **train**: per device kind, fit every device's baseline on ``telemetry_1h`` over the training
  window and store a new model version (fleet limits + per-device baselines, all JSON). What keeps
  a fault from becoming "normal" (issue 15): hours under a detection episode or a work order leave
  the fit; a device with an open detection keeps the baseline that raised it; and each device has
  a healthy *reference* (its first weeks, or the weeks after its last repair) — a new baseline is
  accepted only while the training window still looks normal against it
  (:meth:`Detector.drift`), so wear slower than the daily retrain is not absorbed. The fleet
  limits come from the active version when there is one, otherwise from the limits calibrated on
  the simulated training fleet and shipped in ``limits.json`` (``evaluate --write-limits``).
- **score**: for each kind with an active model, advance every device's detections over the
  cells of :mod:`cloud.analytics.timeline` (a fixed time grid, so the result does not depend on
  when or how often scoring runs), record each episode once and turn it into a ``fleet`` alarm
  through the alarm/work-order path (:func:`cloud.ops.alarms.lifecycle.apply_event`) with
  severity ``warning`` and the detector's explanation — the service-level policy makes that a
  P3 *preventive* (planned) work order, not an emergency. Episodes that ended are cleared (alarm
  clear), and the equipment health record of every scored device is refreshed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection

from cloud.analytics import calendar_store, modelstore, retrain, timeline
from cloud.analytics import detection_store as store
from cloud.analytics.daycalendar import DayCalendar
from cloud.analytics.detection import Detection
from cloud.analytics.detection_store import DeviceRef
from cloud.analytics.detectors import DETECTORS, Detector, Params, episodes
from cloud.analytics.frames import HOUR_MS, HourlyFrame, from_rollup_rows, mask_hours
from cloud.analytics.health import health_record

if TYPE_CHECKING:
    from cloud.ops.model.policy import Policy

log = logging.getLogger(__name__)

CATCH_UP = dt.timedelta(days=35)
"""How far back scoring resumes at most (after an outage, or for a device never scored)."""
HEALTH_WINDOW = dt.timedelta(days=30)


@dataclass(slots=True)
class ScoreResult:
    devices: int = 0
    detections: list[Detection] = field(default_factory=list)
    alarms_raised: int = 0
    cleared: int = 0
    health_updated: int = 0


def shipped_limits() -> dict[str, Params]:
    """Fleet limits calibrated on the simulated training fleet (seed 1), shipped with the code."""
    path = resources.files("cloud.analytics") / "limits.json"
    try:
        data: dict[str, Params] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return data


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


async def load_frame(conn: AsyncConnection[Any], device: DeviceRef, start: dt.datetime,
                     end: dt.datetime, calendar: DayCalendar | None = None) -> HourlyFrame:
    """The device's hourly rollup over ``[start, end)`` as a frame, with its community's day
    calendar (holidays, make-up workdays: the occupancy channels do not judge those hours)."""
    rows = await store.rollup_rows(conn, device.id, start, end)
    return from_rollup_rows(device.code, device.kind, rows, start_ms=_ms(start), end_ms=_ms(end),
                            community=device.community, calendar=calendar)


class _Calendars:
    """Each community's calendar, read once per train or score run (its own days and time zone)."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn
        self._found: dict[str, DayCalendar] = {}

    async def of(self, community: str) -> DayCalendar:
        if community not in self._found:
            self._found[community] = await calendar_store.load_calendar(self._conn, community)
        return self._found[community]


class _Peers:
    """A kind's community features for one score run (:attr:`Detector.peers`): per community and
    cell range, every device of the kind in the community loaded once and the feature computed
    from their active baselines — the same for every device of the community scored in the run.
    Each member's frame carries the community's calendar, as the device's own does: the feature
    judges the members' own statistics (the meters: :meth:`Detector.peer_feature`)."""

    def __init__(self, conn: AsyncConnection[Any], detector: Detector, params: Params,
                 baselines: dict[int, Params], calendars: _Calendars) -> None:
        self._conn, self._detector, self._params, self._baselines = conn, detector, params, baselines
        self._calendars = calendars
        self._devices: dict[str, list[DeviceRef]] = {}
        self._found: dict[tuple[str, int, int], Any] = {}

    async def attach(self, frame: HourlyFrame, community: str, lo: int, hi: int) -> HourlyFrame:
        key = (community, lo, hi)
        if key not in self._found:
            if community not in self._devices:
                self._devices[community] = await store.devices_of(self._conn, self._detector.kind, community)
            members = self._devices[community]
            calendar = await self._calendars.of(community)
            frames = [await load_frame(self._conn, member, store.at(lo), store.at(hi), calendar)
                      for member in members]
            self._found[key] = self._detector.peer_feature(frames, [self._baselines.get(m.id) for m in members],
                                                           self._params)
        return self._detector.with_peer_feature(frame, self._found[key])


async def train(conn: AsyncConnection[Any], start: dt.datetime, end: dt.datetime, *, kinds: list[str] | None = None,
                community: str | None = None) -> dict[str, modelstore.ModelVersion]:
    """Fit baselines on ``[start, end)`` for every device of each kind and store a new version per kind."""
    shipped = shipped_limits()
    saved: dict[str, modelstore.ModelVersion] = {}
    calendars = _Calendars(conn)
    for kind, detector in DETECTORS.items():
        if kinds and kind not in kinds:
            continue
        devices = await store.devices_of(conn, kind, community)
        if not devices:
            continue
        active = await modelstore.load_model(conn, detector.name)
        params = detector.hyper(active.params if active else shipped.get(kind, {}))
        # nothing calibrated yet (no limits.json): every channel starts at its physical floor
        params.setdefault("limits", {c.name: c.floor for c in detector.channels})
        baselines: dict[int, Params] = {}
        skipped: dict[str, str] = {}
        held: dict[str, str] = {}
        previous = await modelstore.load_baselines(conn, active.id) if active else {}
        suspect = await store.devices_with_open_detection(conn)
        for device in devices:
            frame = await load_frame(conn, device, start, end, await calendars.of(device.community))
            # hours under a detection or a work order are not "normal": they leave the fit
            frame = mask_hours(frame, await store.suspect_ranges(conn, device, start, end))
            reference = await modelstore.load_reference(conn, device.id, detector.name)
            repaired = await store.repaired_at(conn, device, reference.window_end) if reference else None
            decision = retrain.decide(detector, frame, params, reference=reference.params if reference else None,
                                      previous=previous.get(device.id), open_detection=device.id in suspect,
                                      repaired=repaired is not None and repaired <= start)
            if decision.skipped is not None:
                skipped[device.code] = decision.skipped
            if decision.held is not None:
                held[device.code] = decision.held
            if decision.baseline is None:
                continue
            baselines[device.id] = decision.baseline
            if decision.new_reference is not None:
                await modelstore.save_reference(conn, device.id, detector.name, decision.baseline, (start, end),
                                                decision.new_reference)
        if not baselines:
            log.info("analytics train %s: no device has enough history in %s..%s", kind, start, end)
            continue
        reasons = dict(list(skipped.items())[:20])
        metrics = {"devices": len(baselines), "skipped": len(skipped), "skipped_reasons": reasons,
                   "held": len(held), "held_channels": dict(list(held.items())[:20])}
        source = f"db:{community or '*'}; limits from " + (f"v{active.version}" if active else "shipped limits.json")
        model = await modelstore.save_model(conn, detector=detector.name, kind=kind, params=params, metrics=metrics,
                                            window=(start, end), source=source)
        for device_id, baseline in baselines.items():
            await modelstore.save_baseline(conn, model.id, device_id, baseline, (start, end),
                                           int(baseline.get("samples", 0)))
        await conn.commit()
        log.info("analytics train %s: v%d with %d baselines (%d skipped)", kind, model.version, len(baselines),
                 len(skipped))
        saved[kind] = model
    return saved


async def score(conn: AsyncConnection[Any], now: dt.datetime, *, since: dt.datetime | None = None,
                community: str | None = None, raise_alarms: bool = True, health: bool = True,
                policy: Policy | None = None) -> ScoreResult:
    """Advance every device's detections to the last complete hour before ``now``; refresh health
    records unless ``health`` is False (they read 30 days per device, so the service does it hourly).

    Scoring resumes from the earlier of ``since`` (default: 2 hours ago) and the device's last
    scored hour (``analytics_scoring_state``), one cell of :mod:`cloud.analytics.timeline` at a
    time; its events are applied idempotently (a detection is identified by its device, detector
    and confirmation hour), so the result is the same for any step size, window start or restart.

    ``policy`` is the service's work-order policy (``GUANJIA_WO_POLICY``), so orders opened from
    detections get the same SLA clocks as every other order; the shipped one when not given
    (the CLI loads the same file through :class:`guanjia.core.settings.Settings`)."""
    from cloud.ops.model.policy import default_policy

    policy = policy or default_policy()
    since = since or now - dt.timedelta(hours=2)
    end = now.replace(minute=0, second=0, microsecond=0)  # only complete hours
    result = ScoreResult()
    calendars = _Calendars(conn)
    for kind, detector in DETECTORS.items():
        model = await modelstore.load_model(conn, detector.name)
        # without a model yet, devices still get their health record (counters, faults, score)
        baselines = await modelstore.load_baselines(conn, model.id) if model is not None else {}
        peers = (_Peers(conn, detector, model.params, baselines, calendars)
                 if model is not None and detector.peers else None)
        for device in await store.devices_of(conn, kind, community):
            baseline = baselines.get(device.id)
            result.devices += 1
            if model is not None and baseline is not None:
                await _advance_device(conn, policy, device, detector, model, baseline, since, end, now,
                                      raise_alarms, result, await calendars.of(device.community), peers)
            if health:
                await _store_health(conn, device, baseline, end, now, await calendars.of(device.community))
                result.health_updated += 1
            await conn.commit()
    return result


async def _advance_device(conn: AsyncConnection[Any], policy: Policy, device: DeviceRef, detector: Detector,
                          model: modelstore.ModelVersion, baseline: Params, since: dt.datetime, end: dt.datetime,
                          now: dt.datetime, raise_alarms: bool, result: ScoreResult, calendar: DayCalendar,
                          peers: _Peers | None = None) -> None:
    last = await store.scored_until(conn, device.id, detector.name)
    resume = min(since, last) if last is not None else since
    # a device silent for months is not replayed from the start: at most CATCH_UP back
    from_ms = max(_ms(min(resume, end)) // HOUR_MS * HOUR_MS, _ms(end - CATCH_UP))
    end_ms = _ms(end)
    if end_ms <= from_ms:
        return
    begin_ms = timeline.cell_range(timeline.cell_of(from_ms))[0]
    open_before = {name: timeline.OpenDetection(name, detected_ms) for name, detected_ms
                   in (await store.open_at(conn, device.id, detector.name, begin_ms)).items()}
    frames: dict[tuple[int, int], HourlyFrame] = {}
    for cell in range(timeline.cell_of(from_ms), timeline.cell_of(end_ms - HOUR_MS) + 1):
        lo, hi = timeline.cell_origin(cell), min(timeline.cell_range(cell)[1], end_ms)
        frame = await load_frame(conn, device, store.at(lo), store.at(hi), calendar)
        frames[(lo, hi)] = frame if peers is None else await peers.attach(frame, device.community, lo, hi)
    outcome = timeline.advance(detector, lambda lo, hi: frames[(lo, hi)], baseline, model.params,
                               from_ms=from_ms, end_ms=end_ms, open_before=open_before,
                               not_before_ms=_ms(model.window_end) if model.window_end is not None else None)
    for event in outcome.events:
        if isinstance(event, timeline.Raise):
            if await store.insert_detection(conn, device.id, model.id, event.detection):
                result.detections.append(event.detection)
                if raise_alarms:
                    await _raise_alarm(conn, policy, device, event.detection, now)
                    result.alarms_raised += 1
        elif await _clear_detection(conn, policy, device, event, now, raise_alarms):
            result.cleared += 1
    for name, still in outcome.open.items():
        await store.mark_seen(conn, device.id, name, still.detected_ms, end)
    await store.save_scoring_state(conn, device.id, detector.name, end, model.id, now)


def alarm_rule(detector: str, fault: str) -> str:
    """The alarm rule of a detection: one per *fault* of a kind of device, not per channel.

    Several channels can see one fault (a bearing's wear in the day's and the three days' current,
    a leak in the flow, the duty and the pressure): one alarm and one work order stand for them —
    a butler sent twice to the same bearing is the kind of noise that teaches people to ignore
    the system. ``pump.current_excess`` + ``bearing_wear`` → ``analytics.pump.bearing_wear``."""
    kind, _, _channel = detector.partition(".")
    return f"analytics.{kind}.{fault}"


async def _raise_alarm(conn: AsyncConnection[Any], policy: Any, device: DeviceRef, det: Detection,
                       now: dt.datetime) -> None:
    from cloud.ops.alarms.lifecycle import apply_event
    from cloud.ops.model.alarms import AlarmEvent

    event = AlarmEvent(community=device.community, device=device.code, rule=alarm_rule(det.detector, det.fault),
                       state="raise",
                       ts=det.detected_ms, severity="warning", message=det.message, value=round(det.score, 3),
                       work_order=True, labels={"category": "maintenance", "fault": det.fault, "kind": device.kind,
                                                "source": "analytics"},
                       source="fleet", device_kind=device.kind, building=device.building)
    outcome = await apply_event(conn, policy, event, now)
    if outcome.alarm_id is not None:
        await store.link_alarm(conn, device.id, det.detector, det.detected_ms, outcome.alarm_id)


async def _clear_detection(conn: AsyncConnection[Any], policy: Any, device: DeviceRef, event: timeline.Clear,
                           now: dt.datetime, raise_alarms: bool) -> bool:
    """Close the detection the event names (no-op when it is already closed); clear its alarm
    unless another channel still sees the same fault (the alarm is per fault, :func:`alarm_rule`)."""
    fault = await store.close_detection(conn, device.id, event.detector, event.detected_ms, event.at_ms)
    if fault is None:
        return False
    if raise_alarms and not await store.fault_open(conn, device.id, fault):
        from cloud.ops.alarms.lifecycle import apply_event
        from cloud.ops.model.alarms import AlarmEvent

        await apply_event(conn, policy, AlarmEvent(
            community=device.community, device=device.code, rule=alarm_rule(event.detector, fault),
            state="clear", ts=event.at_ms, severity="warning", message="back to normal", source="fleet",
            device_kind=device.kind), now)
    return True


async def _store_health(conn: AsyncConnection[Any], device: DeviceRef, baseline: Params | None,
                        end: dt.datetime, now: dt.datetime, calendar: DayCalendar | None = None) -> None:
    start = end - HEALTH_WINDOW
    window = await load_frame(conn, device, start, end, calendar)
    open_detections = [{"detector": o.detector, "fault": o.fault, "message": o.message}
                       for o in await store.open_summaries(conn, device.id)]
    await store.save_health(conn, device, (start, end), health_record(window, baseline, open_detections), now)


__all__ = ["DeviceRef", "ScoreResult", "alarm_rule", "episodes", "load_frame", "score", "shipped_limits", "train"]
