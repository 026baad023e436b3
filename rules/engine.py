"""The incremental rule evaluator shared by the edge agent and the cloud.

Pure: no I/O, no clock. Readings come in with their timestamps (:meth:`RuleEngine.process`); time
that passes without readings is told with :meth:`RuleEngine.tick`. Both return alarm transitions
(:class:`AlarmEvent`), one per raise and one per clear, which map 1:1 onto the wire alarm item.

Per reading the engine touches only the rules of the device's kind whose metrics are in the
reading, and each of those in O(1). Devices keep a merged view of their latest good values, so a
rule combining several metrics works on report-by-exception streams that carry only changes.

The alarm state machine on top of every condition:

* ``for``: the condition must hold that long before the alarm raises (pending, not raised);
* ``clear_for``: it must stay false that long before the alarm clears;
* ``hold``: a raised alarm stays raised at least that long (damps flapping);
* raise once, clear once: no repeated raise while active, no clear without a raise;
* unknown (a missing or bad value) neither raises nor clears.

Everything, including pending ``for`` timers and learned baselines, survives
:meth:`RuleEngine.snapshot` / :meth:`RuleEngine.restore` (JSON), so an agent restart does not
forget a half-elapsed duration or an active alarm.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from guanjia.core.wire import AlarmDict, Quality, Scalar
from rules.errors import RuleError
from rules.profiles import EnumTables, builtin_enum_tables
from rules.ruleset import MESSAGE_ZH_LABEL, CompiledRule, RuleSet

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT: Final = "guanjia.rules/1"
_QNAME: Final[dict[object, str]] = {**{q: q.wire for q in Quality}, **{q.wire: q.wire for q in Quality}}
_USABLE: Final = frozenset({"good", "uncertain", "clock_skew"})
"""Qualities whose values rules may use (a skewed clock does not make a pressure wrong)."""
_UNREACHABLE: Final = frozenset({"offline", "comm_error", "timeout"})
"""Qualities that mean nothing was read from the device at all."""


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One alarm transition; :meth:`to_wire` is the wire contract's alarm item."""

    device: str
    rule: str
    state: Literal["raise", "clear"]
    severity: str
    ts: int
    message: str
    value: Scalar = None
    work_order: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    def to_wire(self) -> AlarmDict:
        return {
            "device": self.device,
            "rule": self.rule,
            "state": self.state,
            "severity": self.severity,
            "ts": self.ts,
            "message": self.message,
            "value": self.value,
            "work_order": self.work_order,
            "labels": dict(self.labels),
        }

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> AlarmEvent:
        return cls(
            device=item["device"],
            rule=item["rule"],
            state=item["state"],
            severity=item.get("severity", "warning"),
            ts=item["ts"],
            message=item.get("message", ""),
            value=item.get("value"),
            work_order=bool(item.get("work_order", False)),
            labels=dict(item.get("labels") or {}),
        )


def _wire_value(value: Any) -> Scalar:
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int):
        return value
    return str(value)[:256]


def _labelled(enums: tuple[tuple[str, Mapping[int, str]], ...], values: Mapping[str, Any]) -> Mapping[str, Any]:
    """Replace enum codes by their labels (a copy, only when the reading has an enum point)."""
    out: dict[str, Any] | None = None
    for metric, table in enums:
        code = values.get(metric)
        if code is None or isinstance(code, str | bool) or not isinstance(code, int | float):
            continue
        label = table.get(int(code))
        if label is not None:
            if out is None:
                out = dict(values)
            out[metric] = label
    return values if out is None else out


class _Slot:
    """Alarm state of one rule on one device."""

    __slots__ = ("active", "clearing", "cr", "pending", "raised_at", "sig", "st", "value")

    def __init__(self, cr: CompiledRule, now: int) -> None:
        self.cr = cr
        self.st = cr.cond.new(now)
        self.active = False
        self.pending: int | None = None
        self.clearing: int | None = None
        self.raised_at: int | None = None
        self.sig: bool | None = None
        self.value: Any = None


class _Device:
    __slots__ = ("enums", "id", "kind", "latest", "offline", "offline_slots", "profile", "seen", "slots", "values")

    def __init__(self, device: str, kind: str, profile: str | None, now: int) -> None:
        self.id = device
        self.kind = kind
        self.profile = profile
        self.values: dict[str, Any] = {}
        self.seen = now
        self.latest = now
        self.offline = False
        self.slots: list[_Slot] = []
        self.offline_slots: list[_Slot] = []
        self.enums: tuple[tuple[str, Mapping[int, str]], ...] = ()


class RuleEngine:
    """Evaluate a :class:`RuleSet` over many device streams. Not thread-safe: one owner task."""

    def __init__(
        self, ruleset: RuleSet, *, stale_after_ms: int | None = 120_000, enums: EnumTables | None = None
    ) -> None:
        """``stale_after_ms``: after this long without a reading, time alone no longer raises or
        clears a device's non-offline rules (its last values are too old to trust); ``None``
        never (the cloud on sparse rollups).

        ``enums``: code → label tables per profile id or kind (:func:`rules.profiles.enum_tables`);
        enum points arrive as integer codes and rules compare labels. Default: the shipped profiles.
        """
        self.ruleset = ruleset
        self.stale_after_ms = stale_after_ms
        self.enums: EnumTables = builtin_enum_tables() if enums is None else enums
        self._devices: dict[str, _Device] = {}
        self._orphans: list[AlarmEvent] = []
        self._now: int | None = None
        """The latest time the engine was told (a reading's or a tick's): the snapshot's "at"."""
        self.stats = {"readings": 0, "out_of_order": 0, "raised": 0, "cleared": 0}

    # ------------------------------------------------------------------ devices

    def _attach(self, device: str, kind: str, profile: str | None, now: int) -> _Device:
        old = self._devices.get(device)
        dev = _Device(device, kind, profile, now)
        tables = self.enums.get(profile) if profile is not None else None
        if tables is None:
            tables = self.enums.get(kind, {})
        dev.enums = tuple(tables.items())
        for cr in self.ruleset.for_device(device, kind, profile):
            slot = _Slot(cr, now)
            (dev.offline_slots if cr.offline else dev.slots).append(slot)
        if old is not None:
            # the device changed kind or profile: alarms of rules that no longer apply must clear
            keep = {s.cr.id for s in (*dev.slots, *dev.offline_slots)}
            for s in (*old.slots, *old.offline_slots):
                if s.active and s.cr.id not in keep:
                    self._orphans.append(self._event(old, s, "clear", now, "no longer applies"))
            dev.values = old.values
        self._devices[device] = dev
        return dev

    def watch(self, device: str, kind: str, now_ms: int, profile: str | None = None) -> None:
        """Start tracking a device before its first reading, so a device that never answers
        still raises its offline alarm ``after`` the configured time."""
        dev = self._devices.get(device)
        if dev is None or dev.kind != kind or (profile is not None and dev.profile != profile):
            self._attach(device, kind, profile, now_ms)

    def forget(self, device: str) -> None:
        """Drop a decommissioned device and its state (no clear events are produced)."""
        self._devices.pop(device, None)

    @property
    def devices(self) -> int:
        return len(self._devices)

    # ------------------------------------------------------------------ evaluation

    def process(
        self,
        device: str,
        kind: str,
        ts_ms: int,
        values: Mapping[str, Any],
        quality: Quality | str = Quality.GOOD,
        q: Mapping[str, Quality | str] | None = None,
        profile: str | None = None,
    ) -> list[AlarmEvent]:
        """Feed one reading; return the alarm transitions it causes (usually none).

        ``quality`` applies to the whole reading and ``q`` overrides it per metric, as on the wire.
        Values of unusable quality are forgotten (unknown), not evaluated. A reading whose quality
        says the device is unreachable (offline, timeout, comm_error) only feeds offline rules.
        """
        dev = self._devices.get(device)
        if dev is None or dev.kind != kind or (profile is not None and dev.profile != profile):
            dev = self._attach(device, kind, profile, ts_ms)
        events: list[AlarmEvent] = []
        if ts_ms < dev.latest:
            # a late reading (replayed backlog) would run the windows backwards: skip it
            self.stats["out_of_order"] += 1
            return events
        dev.latest = ts_ms
        self.stats["readings"] += 1
        qname = _QNAME.get(quality, "bad")
        uniform = True
        if q:
            if q.keys() == values.keys():  # the usual case: a quality for every point
                names = {_QNAME.get(x, "bad") for x in set(q.values())} if values else set()
            else:
                names = {_QNAME.get(q.get(m, quality), "bad") for m in values}
            if len(names) == 1:
                qname = names.pop()
            elif names:
                uniform = False
        if uniform and qname in _UNREACHABLE:
            # nothing was read: only offline rules learn something, the other rules keep their state
            dev.offline = True
            offline = qname == "offline"
            for slot in dev.offline_slots:
                sig, value = slot.cr.cond.reading(slot.st, ts_ms, values, True, offline)  # type: ignore[attr-defined]
                self._step(dev, slot, sig, value, ts_ms, events)
            return events
        dev.offline = False
        dev.seen = ts_ms
        if dev.enums:
            values = _labelled(dev.enums, values)
        current = dev.values
        if uniform and qname in _USABLE:
            current.update(values)
        else:
            for metric, value in values.items():
                if value is not None and _QNAME.get(q.get(metric, quality) if q else quality, "bad") in _USABLE:
                    current[metric] = value
                else:
                    current.pop(metric, None)
        current["$ts"] = ts_ms / 1000
        current["$quality"] = qname
        for slot in dev.offline_slots:
            sig, value = slot.cr.cond.reading(slot.st, ts_ms, values, False, False)  # type: ignore[attr-defined]
            self._step(dev, slot, sig, value, ts_ms, events)
        for slot in dev.slots:
            cr = slot.cr
            if not cr.always:
                for metric in cr.metrics:
                    if metric in values:
                        break
                else:
                    continue
            sig, value = cr.cond.update(slot.st, ts_ms, current)
            if sig is None:
                continue
            slot.sig = sig
            slot.value = cr.value_fn(current) if cr.value_fn is not None else value
            if sig or slot.active or slot.pending is not None:
                self._step(dev, slot, sig, slot.value, ts_ms, events)
        return events

    def tick(self, now_ms: int) -> list[AlarmEvent]:
        """Advance time: offline timeouts, pending ``for``/``clear_for``/``hold``, sliding windows."""
        events: list[AlarmEvent] = []
        if self._now is None or now_ms > self._now:
            self._now = now_ms
        if self._orphans:
            events.extend(self._orphans)
            self._orphans.clear()
        stale_after = self.stale_after_ms
        for dev in self._devices.values():
            for slot in dev.offline_slots:
                cond = slot.cr.cond
                sig = cond.tick(slot.st, now_ms)
                if sig is not None:
                    slot.value = cond.silent_s(slot.st, now_ms)  # type: ignore[attr-defined]
                    self._step(dev, slot, sig, slot.value, now_ms, events)
            if dev.offline or (stale_after is not None and now_ms - dev.seen > stale_after):
                continue
            for slot in dev.slots:
                cr = slot.cr
                if not cr.timed:
                    continue
                if cr.cond.timed:
                    sig = cr.cond.tick(slot.st, now_ms)
                    if sig is not None:
                        slot.sig = sig
                        value = cr.cond.tick_value(slot.st)
                        if value is not None:
                            slot.value = value
                if slot.sig is not None:
                    self._step(dev, slot, slot.sig, slot.value, now_ms, events)
        return events

    def _step(self, dev: _Device, slot: _Slot, sig: bool | None, value: Any, ts: int, out: list[AlarmEvent]) -> None:
        if sig is None:
            return
        rule = slot.cr.rule
        if not slot.active:
            if not sig:
                slot.pending = None
                return
            if slot.pending is None:
                slot.pending = ts
            if ts - slot.pending >= rule.for_:
                slot.active = True
                slot.pending = None
                slot.clearing = None
                slot.raised_at = ts
                slot.value = value
                self.stats["raised"] += 1
                out.append(self._event(dev, slot, "raise", ts))
            return
        if sig:
            slot.clearing = None
            return
        if slot.clearing is None:
            slot.clearing = ts
        if ts - slot.clearing >= rule.clear_for and ts - (slot.raised_at or ts) >= rule.hold:
            slot.active = False
            slot.clearing = None
            slot.raised_at = None
            slot.value = value
            self.stats["cleared"] += 1
            out.append(self._event(dev, slot, "clear", ts))

    def _event(
        self, dev: _Device, slot: _Slot, state: Literal["raise", "clear"], ts: int, reason: str | None = None
    ) -> AlarmEvent:
        cr = slot.cr
        rule = cr.rule
        fields: dict[str, Any] = dict(dev.values)
        fields.update(cr.cond.context(slot.st))
        metric = rule.condition.metric if isinstance(getattr(rule.condition, "metric", None), str) else None
        fields.update(
            device=dev.id, kind=dev.kind, rule=rule.id, severity=rule.severity, value=slot.value, metric=metric
        )
        message = cr.template.render(fields)
        if state == "clear":
            message = cr.clear_template.render(fields) if cr.clear_template is not None else f"cleared: {message}"
            if reason:
                message = f"{message} ({reason})"
        labels = dict(cr.labels)
        labels["kind"] = dev.kind
        if cr.template_zh is not None:
            zh = cr.template_zh.render(fields)
            if state == "clear":
                zh = f"已恢复：{zh}" + (f"（{reason}）" if reason else "")
            labels[MESSAGE_ZH_LABEL] = zh[:500]
        return AlarmEvent(
            dev.id, rule.id, state, rule.severity, ts, message[:1000], _wire_value(slot.value), rule.work_order, labels
        )

    def active_count(self) -> int:
        """How many alarms are raised now (cheap: for health reports)."""
        return sum(s.active for dev in self._devices.values() for s in (*dev.slots, *dev.offline_slots))

    def active_alarms(self) -> list[AlarmEvent]:
        """A raise event for every alarm currently raised (to resynchronise a receiver)."""
        out: list[AlarmEvent] = []
        for dev in self._devices.values():
            for slot in (*dev.slots, *dev.offline_slots):
                if slot.active:
                    out.append(self._event(dev, slot, "raise", slot.raised_at or dev.latest))
        return out

    # ------------------------------------------------------------------ persistence and reload

    def snapshot(self) -> dict[str, Any]:
        """Every device's values, timers, windows, baselines and active alarms, as JSON data."""
        devices: dict[str, Any] = {}
        for dev in self._devices.values():
            rules: dict[str, Any] = {}
            keep: set[str] = set()
            for slot in (*dev.slots, *dev.offline_slots):
                keep |= slot.cr.keep
                rules[slot.cr.id] = {
                    "fp": slot.cr.fingerprint,
                    "active": slot.active,
                    "pending": slot.pending,
                    "clearing": slot.clearing,
                    "raised_at": slot.raised_at,
                    "sig": slot.sig,
                    "value": _wire_value(slot.value),
                    "st": slot.cr.cond.dump(slot.st),
                }
            devices[dev.id] = {
                "kind": dev.kind,
                "profile": dev.profile,
                "seen": dev.seen,
                "latest": dev.latest,
                "offline": dev.offline,
                "values": {k: _wire_value(v) for k, v in dev.values.items() if k in keep},
                "rules": rules,
            }
        return {"format": SNAPSHOT_FORMAT, "at": self._now, "devices": devices}

    @classmethod
    def restore(
        cls,
        ruleset: RuleSet,
        snapshot: Mapping[str, Any],
        *,
        now_ms: int | None = None,
        stale_after_ms: int | None = 120_000,
        enums: EnumTables | None = None,
    ) -> RuleEngine:
        """Rebuild an engine from :meth:`snapshot` data, possibly with a changed rule set.

        Unchanged rules keep all their state. A changed rule keeps its raised alarm but restarts
        its condition (windows, baselines). An active alarm whose rule is gone, or no longer
        applies to the device, is cleared by the next :meth:`tick`.

        With ``now_ms``, the time between the snapshot and now is time the engine did not run
        (the agent was stopped): conditions that measure silence do not count it against the
        device (:meth:`rules.conditions.Condition.resume`). Without that, every device looked
        silent for the whole restart gap, and an agent restarted after two minutes raised an
        offline alarm for every device before its first poll.
        """
        if snapshot.get("format") != SNAPSHOT_FORMAT:
            raise RuleError(f"unknown rule state format {snapshot.get('format')!r} (want {SNAPSHOT_FORMAT})")
        engine = cls(ruleset, stale_after_ms=stale_after_ms, enums=enums)
        saved_at = snapshot.get("at")
        downtime = now_ms - int(saved_at) if now_ms is not None and isinstance(saved_at, int) else 0
        for device, data in snapshot.get("devices", {}).items():
            seen = int(data.get("seen", 0))
            now = now_ms if now_ms is not None else seen
            dev = engine._attach(device, data["kind"], data.get("profile"), seen)
            dev.seen = seen
            dev.latest = int(data.get("latest", seen))
            dev.offline = bool(data.get("offline", False))
            dev.values = dict(data.get("values", {}))
            saved: dict[str, Any] = dict(data.get("rules", {}))
            for slot in (*dev.slots, *dev.offline_slots):
                state = saved.pop(slot.cr.id, None)
                if state is None:
                    continue
                if state.get("fp") == slot.cr.fingerprint:
                    slot.st = slot.cr.cond.load(state.get("st"), now)
                    if downtime > 0:
                        slot.cr.cond.resume(slot.st, downtime)
                    slot.pending = state.get("pending")
                    slot.clearing = state.get("clearing")
                    slot.sig = state.get("sig")
                slot.active = bool(state.get("active"))
                slot.raised_at = state.get("raised_at")
                slot.value = state.get("value")
            for rule_id, state in saved.items():
                if state.get("active"):
                    engine._orphans.append(
                        AlarmEvent(
                            device,
                            rule_id,
                            "clear",
                            "info",
                            now,
                            f"{device}: rule {rule_id} removed",
                            state.get("value"),
                            False,
                            {"kind": dev.kind, "reason": "rule_removed"},
                        )
                    )
        return engine

    def reload(self, ruleset: RuleSet, now_ms: int) -> list[AlarmEvent]:
        """Swap in a new rule set, carrying over state as :meth:`restore` does; return the clears
        for alarms whose rules were removed (and anything else that was due)."""
        fresh = RuleEngine.restore(
            ruleset, self.snapshot(), now_ms=now_ms, stale_after_ms=self.stale_after_ms, enums=self.enums
        )
        fresh.stats = self.stats
        fresh._orphans[:0] = self._orphans
        self.ruleset = fresh.ruleset
        self._devices = fresh._devices
        self._orphans = fresh._orphans
        events = list(self._orphans)
        self._orphans.clear()
        log.info("rules reloaded: %d rules, %d alarms cleared for removed rules", len(ruleset), len(events))
        return events
