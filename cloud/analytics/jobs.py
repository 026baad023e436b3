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
from psycopg.types.json import Jsonb

from cloud.analytics import calendar_store, modelstore, retrain, timeline
from cloud.analytics.daycalendar import DayCalendar
from cloud.analytics.detection import Detection
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
class DeviceRef:
    id: int
    code: str
    community: str
    kind: str
    building: str | None


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


async def devices_of(conn: AsyncConnection[Any], kind: str | None = None,
                     community: str | None = None) -> list[DeviceRef]:
    cur = await conn.execute(
        """SELECT d.id, d.code, c.code, d.kind, b.code FROM devices d
             JOIN communities c ON c.id = d.community_id
             LEFT JOIN buildings b ON b.id = d.building_id
            WHERE (%(k)s::text IS NULL OR d.kind = %(k)s) AND (%(c)s::text IS NULL OR c.code = %(c)s)
            ORDER BY d.id""", {"k": kind, "c": community})
    return [DeviceRef(int(r[0]), r[1], r[2], r[3], r[4]) for r in await cur.fetchall()]


async def load_frame(conn: AsyncConnection[Any], device: DeviceRef, start: dt.datetime,
                     end: dt.datetime, calendar: DayCalendar | None = None) -> HourlyFrame:
    """The device's hourly rollup over ``[start, end)`` as a frame, with its community's day
    calendar (holidays, make-up workdays: the occupancy channels do not judge those hours)."""
    cur = await conn.execute(
        """SELECT (extract(epoch FROM h.bucket) * 1000)::bigint, m.name, h.avg_value, h.min_value, h.max_value
             FROM telemetry_1h h JOIN metrics m ON m.id = h.metric_id
            WHERE h.device_id = %s AND h.bucket >= %s AND h.bucket < %s""", (device.id, start, end))
    rows = [(int(r[0]), str(r[1]), r[2], r[3], r[4]) for r in await cur.fetchall()]
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
    from their active baselines — the same for every device of the community scored in the run."""

    def __init__(self, conn: AsyncConnection[Any], detector: Detector, params: Params,
                 baselines: dict[int, Params]) -> None:
        self._conn, self._detector, self._params, self._baselines = conn, detector, params, baselines
        self._devices: dict[str, list[DeviceRef]] = {}
        self._found: dict[tuple[str, int, int], Any] = {}

    async def attach(self, frame: HourlyFrame, community: str, lo: int, hi: int) -> HourlyFrame:
        key = (community, lo, hi)
        if key not in self._found:
            if community not in self._devices:
                self._devices[community] = await devices_of(self._conn, self._detector.kind, community)
            members = self._devices[community]
            frames = [await load_frame(self._conn, member, _dt(lo), _dt(hi)) for member in members]
            self._found[key] = self._detector.peer_feature(frames, [self._baselines.get(m.id) for m in members],
                                                           self._params)
        return self._detector.with_peer_feature(frame, self._found[key])


async def _suspect_ranges(conn: AsyncConnection[Any], device: DeviceRef, start: dt.datetime,
                          end: dt.datetime) -> list[tuple[int, int]]:
    """``[from, to)`` ms of the device's detection episodes and work orders overlapping the window
    (an open one runs to ``end``)."""
    cur = await conn.execute(
        """SELECT (extract(epoch FROM onset_at) * 1000)::bigint,
                  (extract(epoch FROM coalesce(cleared_at, %(end)s)) * 1000)::bigint
             FROM analytics_detections
            WHERE device_id = %(id)s AND onset_at < %(end)s AND (cleared_at IS NULL OR cleared_at > %(start)s)
           UNION ALL
           SELECT (extract(epoch FROM created_at) * 1000)::bigint,
                  (extract(epoch FROM coalesce(resolved_at, closed_at, %(end)s)) * 1000)::bigint
             FROM work_orders
            WHERE community = %(c)s AND device = %(d)s AND created_at < %(end)s
              AND coalesce(resolved_at, closed_at, %(end)s) > %(start)s AND state NOT IN ('rejected', 'cancelled')""",
        {"id": device.id, "c": device.community, "d": device.code, "start": start, "end": end})
    return [(int(r[0]), int(r[1])) for r in await cur.fetchall()]


async def _repaired_at(conn: AsyncConnection[Any], device: DeviceRef, after: dt.datetime | None) -> dt.datetime | None:
    """When the device's last work order after ``after`` was resolved (a repair resets the reference)."""
    if after is None:
        return None
    cur = await conn.execute(
        """SELECT max(coalesce(resolved_at, closed_at)) FROM work_orders
            WHERE community = %s AND device = %s AND state IN ('resolved', 'closed')
              AND coalesce(resolved_at, closed_at) > %s""", (device.community, device.code, after))
    row = await cur.fetchone()
    return row[0] if row else None


async def train(conn: AsyncConnection[Any], start: dt.datetime, end: dt.datetime, *, kinds: list[str] | None = None,
                community: str | None = None) -> dict[str, modelstore.ModelVersion]:
    """Fit baselines on ``[start, end)`` for every device of each kind and store a new version per kind."""
    shipped = shipped_limits()
    saved: dict[str, modelstore.ModelVersion] = {}
    calendars = _Calendars(conn)
    for kind, detector in DETECTORS.items():
        if kinds and kind not in kinds:
            continue
        devices = await devices_of(conn, kind, community)
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
        cur = await conn.execute("SELECT DISTINCT device_id FROM analytics_detections WHERE open")
        suspect = {int(r[0]) for r in await cur.fetchall()}
        for device in devices:
            frame = await load_frame(conn, device, start, end, await calendars.of(device.community))
            # hours under a detection or a work order are not "normal": they leave the fit
            frame = mask_hours(frame, await _suspect_ranges(conn, device, start, end))
            reference = await modelstore.load_reference(conn, device.id, detector.name)
            repaired = await _repaired_at(conn, device, reference.window_end if reference else None)
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
        peers = _Peers(conn, detector, model.params, baselines) if model is not None and detector.peers else None
        for device in await devices_of(conn, kind, community):
            baseline = baselines.get(device.id)
            result.devices += 1
            if model is not None and baseline is not None:
                await _advance_device(conn, policy, device, detector, model, baseline, since, end, now,
                                      raise_alarms, result, await calendars.of(device.community), peers)
            if health:
                await _store_health(conn, device, baseline, end, await calendars.of(device.community))
                result.health_updated += 1
            await conn.commit()
    return result


async def _advance_device(conn: AsyncConnection[Any], policy: Policy, device: DeviceRef, detector: Detector,
                          model: modelstore.ModelVersion, baseline: Params, since: dt.datetime, end: dt.datetime,
                          now: dt.datetime, raise_alarms: bool, result: ScoreResult, calendar: DayCalendar,
                          peers: _Peers | None = None) -> None:
    cur = await conn.execute("SELECT scored_until FROM analytics_scoring_state WHERE device_id = %s AND detector = %s",
                             (device.id, detector.name))
    row = await cur.fetchone()
    resume = min(since, row[0]) if row else since
    # a device silent for months is not replayed from the start: at most CATCH_UP back
    from_ms = max(_ms(min(resume, end)) // HOUR_MS * HOUR_MS, _ms(end - CATCH_UP))
    end_ms = _ms(end)
    if end_ms <= from_ms:
        return
    begin_ms = timeline.cell_range(timeline.cell_of(from_ms))[0]
    cur = await conn.execute(
        """SELECT detector, (extract(epoch FROM detected_at) * 1000)::bigint FROM analytics_detections
            WHERE device_id = %s AND detector LIKE %s AND detected_at <= %s
              AND (cleared_at IS NULL OR cleared_at >= %s)""",
        (device.id, f"{detector.name}.%", _dt(begin_ms), _dt(begin_ms)))
    open_before = {str(r[0]): timeline.OpenDetection(str(r[0]), int(r[1])) for r in await cur.fetchall()}
    frames: dict[tuple[int, int], HourlyFrame] = {}
    for cell in range(timeline.cell_of(from_ms), timeline.cell_of(end_ms - HOUR_MS) + 1):
        lo, hi = timeline.cell_origin(cell), min(timeline.cell_range(cell)[1], end_ms)
        frame = await load_frame(conn, device, _dt(lo), _dt(hi), calendar)
        frames[(lo, hi)] = frame if peers is None else await peers.attach(frame, device.community, lo, hi)
    outcome = timeline.advance(detector, lambda lo, hi: frames[(lo, hi)], baseline, model.params,
                               from_ms=from_ms, end_ms=end_ms, open_before=open_before,
                               not_before_ms=_ms(model.window_end) if model.window_end is not None else None)
    for event in outcome.events:
        if isinstance(event, timeline.Raise):
            if await _record_detection(conn, device, model.id, event.detection):
                result.detections.append(event.detection)
                if raise_alarms:
                    await _raise_alarm(conn, policy, device, event.detection, now)
                    result.alarms_raised += 1
        elif await _clear_detection(conn, policy, device, event, now, raise_alarms):
            result.cleared += 1
    for name, still in outcome.open.items():
        await conn.execute("UPDATE analytics_detections SET last_seen_at = %s WHERE device_id = %s AND detector = %s "
                           "AND detected_at = %s AND open", (end, device.id, name, _dt(still.detected_ms)))
    await conn.execute(
        """INSERT INTO analytics_scoring_state (device_id, detector, scored_until, model_id, updated_at)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (device_id, detector) DO UPDATE SET scored_until = GREATEST(
               analytics_scoring_state.scored_until, EXCLUDED.scored_until), model_id = EXCLUDED.model_id,
               updated_at = EXCLUDED.updated_at""", (device.id, detector.name, end, model.id, now))


def alarm_rule(detector: str, fault: str) -> str:
    """The alarm rule of a detection: one per *fault* of a kind of device, not per channel.

    Several channels can see one fault (a bearing's wear in the day's and the three days' current,
    a leak in the flow, the duty and the pressure): one alarm and one work order stand for them —
    a butler sent twice to the same bearing is the kind of noise that teaches people to ignore
    the system. ``pump.current_excess`` + ``bearing_wear`` → ``analytics.pump.bearing_wear``."""
    kind, _, _channel = detector.partition(".")
    return f"analytics.{kind}.{fault}"


async def _record_detection(conn: AsyncConnection[Any], device: DeviceRef, model_id: int, det: Detection) -> bool:
    """Insert the detection; False when this episode is already recorded (same device, detector
    and confirmation hour) or another one of the detector is still open (a model change can move
    an episode's confirmation hour; the open one stands for it)."""
    cur = await conn.execute(
        """INSERT INTO analytics_detections (device_id, model_id, detector, fault, onset_at, detected_at,
                                             last_seen_at, score, message, evidence)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT DO NOTHING RETURNING id""",
        (device.id, model_id, det.detector, det.fault, _dt(det.start_ms), _dt(det.detected_ms), _dt(det.detected_ms),
         det.score, det.message, Jsonb(modelstore.to_json_safe(det.evidence))))
    return await cur.fetchone() is not None


def _dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


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
        await conn.execute(
            "UPDATE analytics_detections SET alarm_id = %s WHERE device_id = %s AND detector = %s AND detected_at = %s",
            (outcome.alarm_id, device.id, det.detector, _dt(det.detected_ms)))


async def _clear_detection(conn: AsyncConnection[Any], policy: Any, device: DeviceRef, event: timeline.Clear,
                           now: dt.datetime, raise_alarms: bool) -> bool:
    """Close the detection the event names (no-op when it is already closed); clear its alarm
    unless another channel still sees the same fault (the alarm is per fault, :func:`alarm_rule`)."""
    cur = await conn.execute(
        "UPDATE analytics_detections SET open = false, cleared_at = %s WHERE device_id = %s AND detector = %s "
        "AND detected_at = %s AND open RETURNING fault", (_dt(event.at_ms), device.id, event.detector,
                                                          _dt(event.detected_ms)))
    row = await cur.fetchone()
    if row is None:
        return False
    fault = str(row[0])
    if raise_alarms:
        from cloud.ops.alarms.lifecycle import apply_event
        from cloud.ops.model.alarms import AlarmEvent

        cur = await conn.execute("SELECT 1 FROM analytics_detections WHERE device_id = %s AND fault = %s AND open "
                                 "LIMIT 1", (device.id, fault))
        if await cur.fetchone() is None:
            await apply_event(conn, policy, AlarmEvent(
                community=device.community, device=device.code, rule=alarm_rule(event.detector, fault),
                state="clear", ts=event.at_ms, severity="warning", message="back to normal", source="fleet",
                device_kind=device.kind), now)
    return True


async def _store_health(conn: AsyncConnection[Any], device: DeviceRef, baseline: Params | None,
                        end: dt.datetime, calendar: DayCalendar | None = None) -> None:
    start = end - HEALTH_WINDOW
    window = await load_frame(conn, device, start, end, calendar)
    cur = await conn.execute("SELECT detector, fault, message FROM analytics_detections WHERE device_id = %s AND open",
                             (device.id,))
    open_detections = [{"detector": r[0], "fault": r[1], "message": r[2]} for r in await cur.fetchall()]
    record = health_record(window, baseline, open_detections)
    await conn.execute(
        """INSERT INTO device_health (device_id, kind, window_start, window_end, record, score, deductions, updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, now())
           ON CONFLICT (device_id) DO UPDATE SET kind = EXCLUDED.kind, window_start = EXCLUDED.window_start,
               window_end = EXCLUDED.window_end, record = EXCLUDED.record, score = EXCLUDED.score,
               deductions = EXCLUDED.deductions, updated_at = now()""",
        (device.id, device.kind, start, end, Jsonb(modelstore.to_json_safe(record.figures)), record.score,
         Jsonb(modelstore.to_json_safe(record.deductions))))


__all__ = ["DeviceRef", "ScoreResult", "alarm_rule", "episodes", "load_frame", "score", "shipped_limits", "train"]
