"""From one MQTT message to what the writer stores: rows, alarms, events, or dead letters.

Order of checks: topic → wire contract (:func:`guanjia.core.wire.decode`) → policy (known gateway,
known or auto-registered devices, timestamp window, value range). A message failing the contract
or an unknown gateway becomes one dead letter; a message with *some* bad items is stored without
them and one dead letter records the refused part (reason, counts, raw payload), so one broken
sensor does not cost the readings of its 999 neighbours.

The telemetry hot path builds columns (lists → numpy) and never a Python object per point.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import numpy as np
import orjson

from cloud.ingest.copy import encode_readings
from cloud.ingest.registry_cache import GatewayInfo, RegistryCache
from cloud.ingest.rows import AlarmEventRow, DeviceEventRow
from cloud.runtime.hooks import TelemetryBatch
from guanjia.core.errors import WireError
from guanjia.core.wire import (
    LEGACY_INCARNATION,
    QUALITY_BY_NAME,
    SEQUENCED_KINDS,
    AlarmDict,
    EventDict,
    FastTelemetry,
    ReadingDict,
    TopicParts,
    decode_checked,
    decode_telemetry,
    parse_topic,
)

DEAD_PAYLOAD_CAP: Final = 64 * 1024
"""Dead letters keep at most this much of the payload (the true size is recorded beside it)."""
VALUE_LIMIT: Final = 1e15
TEXT_LIMIT: Final = 1000
KEY_SETS_MAX: Final = 10_000
TOPICS_MAX: Final = 100_000
_TOPICS: dict[str, TopicParts] = {}


def topic_parts(topic: str) -> TopicParts:
    """:func:`guanjia.core.wire.parse_topic`, remembered per topic string (bounded): a gateway's
    topic repeats with every message, and the preparer and the confirmations both need its
    parts. A bad topic raises every time (never cached)."""
    parts = _TOPICS.get(topic)
    if parts is None:
        parts = parse_topic(topic)
        if len(_TOPICS) >= TOPICS_MAX:
            _TOPICS.clear()
        _TOPICS[topic] = parts
    return parts
"""Bound of :attr:`Preparer.key_ids` (emptied when passed: a gateway inventing key sets costs lookups, not memory)."""
SEQ_WINDOW: Final = 10_000_000
"""Default of :attr:`Policy.seq_window` (see there)."""
_QUALITY: Final = {name: int(q) for name, q in QUALITY_BY_NAME.items()}


@dataclass(frozen=True, slots=True)
class Policy:
    max_future_ms: int = 5 * 60_000
    max_age_ms: int = 30 * 86_400_000
    value_limit: float = VALUE_LIMIT
    seq_window: int = SEQ_WINDOW
    """How far above its incarnation's high-water mark a seq is still trusted; beyond it the message is
    quarantined (``seq_out_of_window``), neither stored nor confirmed, and taken when a resend
    falls inside. Why a gap from the high-water mark: a legitimate edge numbers its batches
    contiguously and sends them oldest first, so even after days offline with a full outbox its
    next seq is close to what the cloud has; only three things open a real gap, and the default
    (10 M batches) covers each with room: alarms and events jumping a telemetry backlog (at most
    the outbox's batches, 512 MiB / ≥100 bytes), telemetry the outbox dropped when full, and the
    1 M jump of a salvaged outbox whose next seq was unreadable (``edge.outbox_salvage``). A
    forged seq ``2**62`` or ``high_water + 10**9`` is refused."""

    def __post_init__(self) -> None:
        if self.seq_window < 1:
            raise ValueError(f"seq_window must be ≥ 1, got {self.seq_window}")


@dataclass(slots=True)
class Incoming:
    """One received MQTT message; ``generation`` is the connection it came on (acks need it)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received_ms: int


@dataclass(slots=True)
class DeadLetter:
    topic: str
    community: str | None
    gateway: str | None
    gateway_id: int | None
    reason: str
    detail: str
    payload: bytes
    payload_size: int


@dataclass(slots=True)
class Prepared:
    incoming: Incoming
    kind: str
    gateway_id: int | None = None
    seq: int | None = None
    incarnation: str = LEGACY_INCARNATION
    digest: bytes = b""
    """:func:`guanjia.core.wire.content_digest` of the items (sequenced messages that decoded)."""
    held: bool = False
    """Set by the writer for a message quarantined as ``seq_out_of_window``: not confirmed."""
    sent_at_ms: int | None = None
    items: int = 0
    points: int = 0
    chunks: list[bytes | memoryview] = field(default_factory=list)
    """Binary COPY rows of ``telemetry_readings`` (no header): bytes, or slices of the batch's
    rows when :meth:`Preparer.finish` encoded them together."""
    columns: dict[int, _Group] | None = None
    """Readings not yet encoded, by metric count (the fast path): :meth:`Preparer.finish` turns the
    columns of a whole batch into COPY rows at once."""
    source: tuple[TopicParts, dict[str, int], FastTelemetry] | None = None
    """The decoded message behind a fast-path :class:`Prepared`, for :meth:`telemetry_batch`."""
    text_rows: list[tuple[Any, ...]] = field(default_factory=list)
    tmin_ms: int | None = None
    tmax_ms: int | None = None
    alarms: list[AlarmEventRow] = field(default_factory=list)
    events: list[DeviceEventRow] = field(default_factory=list)
    status: tuple[Any, ...] | None = None
    dead: list[DeadLetter] = field(default_factory=list)
    telemetry: TelemetryBatch | None = None
    """The decoded readings, for after-commit telemetry hooks (references only, no copy)."""

    @property
    def sequenced(self) -> bool:
        return self.gateway_id is not None and self.seq is not None

    def telemetry_batch(self) -> TelemetryBatch | None:
        """The message for after-commit telemetry hooks; the fast path builds the reading dicts
        only here, when a hook wants them."""
        if self.telemetry is None and self.source is not None:
            parts, devices, fast = self.source
            self.telemetry = TelemetryBatch(parts.community, parts.gateway, self.gateway_id or 0, fast.seq,
                                            self.incoming.received_ms, devices, fast.items())
        return self.telemetry


def dead_letter(incoming: Incoming, reason: str, detail: str, parts: TopicParts | None = None,
                gateway_id: int | None = None) -> DeadLetter:
    return DeadLetter(
        topic=incoming.topic[:300],
        community=parts.community if parts else None,
        gateway=parts.gateway if parts else None,
        gateway_id=gateway_id,
        reason=reason,
        detail=detail[:1000].replace("\x00", "\\0"),
        payload=incoming.payload[:DEAD_PAYLOAD_CAP],
        payload_size=len(incoming.payload),
    )


def _refusal(incoming: Incoming, refused: dict[str, int], unknown: list[str], parts: TopicParts,
             gateway_id: int | None) -> DeadLetter:
    """The one dead letter of a message stored without its refused items: counts by reason, the
    first unknown devices, and the most frequent reason as its reason."""
    detail = ", ".join(f"{reason}: {count}" for reason, count in sorted(refused.items()))
    if unknown:
        detail += f"; unknown devices: {', '.join(unknown[:20])}"
    reason = max(refused, key=lambda r: refused[r])
    return dead_letter(incoming, reason, detail, parts, gateway_id)


def _unknown_gateway(incoming: Incoming, parts: TopicParts) -> DeadLetter:
    return dead_letter(incoming, "unknown_gateway", f"{parts.community}/{parts.gateway} is not registered", parts)


def ms_to_dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _clean_text(value: object, limit: int = TEXT_LIMIT) -> str | None:
    if not isinstance(value, str):
        return None
    return value[:limit].replace("\x00", "")


class _Group:
    """Readings with the same number of metrics (one COPY row layout), as flat columns."""

    __slots__ = ("dev", "ids", "n", "q", "qs", "ts", "vals")

    def __init__(self, n: int) -> None:
        self.n = n
        self.ts: list[int] = []
        self.dev: list[int] = []
        self.q: list[int] = []
        self.ids: list[int] = []
        self.vals: list[Any] = []
        self.qs: list[int] | None = None

    def add(self, ts: int, device: int, quality: int, ids: list[int], values: Iterable[Any],
            qualities: list[int] | None) -> None:
        self.ts.append(ts)
        self.dev.append(device)
        self.q.append(quality)
        self.ids += ids
        self.vals += values
        if qualities is not None:
            if self.qs is None:
                self.qs = []
            self.qs += qualities

    def encode(self, flat: np.ndarray[Any, np.dtype[np.float64]]) -> bytes:
        k = len(self.ts)
        return encode_readings(
            np.array(self.ts, dtype=np.int64), np.array(self.dev, dtype=np.int32), np.array(self.q, dtype=np.int16),
            np.array(self.ids, dtype=np.int16).reshape(k, self.n), flat.reshape(k, self.n),
            None if self.qs is None else np.array(self.qs, dtype=np.int16).reshape(k, self.n))


class Preparer:
    """Turns :class:`Incoming` messages into :class:`Prepared` ones (needs registry lookups)."""

    def __init__(self, cache: RegistryCache, policy: Policy | None = None) -> None:
        self.cache = cache
        self.policy = policy or Policy()
        self.key_ids: dict[tuple[str, ...], list[int]] = {}
        """Metric ids of a reading's key set, shared by all messages (ids never change; bounded
        by :data:`KEY_SETS_MAX`): a fleet sends the same few key sets all day."""

    async def prepare(self, incoming: Incoming) -> Prepared:
        try:
            parts = topic_parts(incoming.topic)
        except WireError as exc:
            return Prepared(incoming, "dead", dead=[dead_letter(incoming, exc.reason, exc.detail)])
        if parts.kind == "status":
            return await self._status(incoming, parts)
        if parts.kind not in SEQUENCED_KINDS:
            return Prepared(incoming, "ignored")
        gw = await self.cache.gateway(parts.community, parts.gateway)
        if gw is None:
            return Prepared(incoming, "dead", dead=[_unknown_gateway(incoming, parts)])
        fast = decode_telemetry(incoming.payload, parts) if parts.kind == "telemetry" else None
        if fast is not None and (done := await self._telemetry_fast(incoming, parts, gw, fast)) is not None:
            return done
        try:
            envelope = fast.envelope(incoming.payload) if fast is not None else decode_checked(incoming.payload, parts)
        except WireError as exc:
            return Prepared(incoming, "dead", gateway_id=gw.id,
                            dead=[dead_letter(incoming, exc.reason, exc.detail, parts, gw.id)])
        except (RecursionError, ValueError, TypeError) as exc:  # belt and braces: never crash on input
            return Prepared(incoming, "dead", gateway_id=gw.id,
                            dead=[dead_letter(incoming, "bad_shape", repr(exc)[:300], parts, gw.id)])
        out = Prepared(incoming, envelope.kind, gateway_id=gw.id, seq=envelope.seq, sent_at_ms=envelope.sent_at,
                       items=len(envelope.items), incarnation=envelope.incarnation,
                       digest=envelope.digest)
        codes = {item["device"] for item in envelope.items}
        devices = await self.cache.device_ids(gw, codes) if codes else {}
        lo = incoming.received_ms - self.policy.max_age_ms
        hi = incoming.received_ms + self.policy.max_future_ms
        refused: dict[str, int] = {}
        if envelope.kind == "telemetry":
            await self._telemetry(out, envelope.items, devices, lo, hi, refused)
            out.telemetry = TelemetryBatch(parts.community, parts.gateway, gw.id, envelope.seq,
                                           incoming.received_ms, devices, envelope.items)
        elif envelope.kind == "alarms":
            self._alarms(out, gw, envelope.items, devices, lo, hi, refused)
        else:
            self._events(out, gw, envelope.items, devices, lo, hi, refused)
        if refused:
            out.dead.append(_refusal(incoming, refused, sorted(codes - devices.keys()), parts, gw.id))
        return out

    # ------------------------------------------------------------------ telemetry, fast path
    async def _telemetry_fast(self, incoming: Incoming, parts: TopicParts, gw: GatewayInfo,
                              fast: FastTelemetry) -> Prepared | None:
        """The common message — every reading of a known device, inside the time window, with a
        key set seen before and no per-metric qualities — as columns for :meth:`finish`; ``None``
        for anything else (the general path below decides, refusals and all).

        Why columns and not COPY rows here: numpy's fixed cost (an array per column, a structured
        array per group) was paid per message, ~40 µs, as much as the rest of preparing a
        40-point message; :meth:`finish` pays it once per batch."""
        readings = fast.readings
        devices = await self.cache.device_ids(gw, {r.device for r in readings}) if readings else {}
        lo = incoming.received_ms - self.policy.max_age_ms
        hi = incoming.received_ms + self.policy.max_future_ms
        key_ids = self.key_ids
        unset = msgspec.UNSET
        columns: dict[int, _Group] = {}
        last_n = -1
        g_ts: list[int] = []
        g_dev: list[int] = []
        g_q: list[int] = []
        g_ids: list[int] = []
        g_vals: list[Any] = []
        for r in readings:
            values = r.values
            device = devices.get(r.device)
            ids = key_ids.get(tuple(values))
            ts = r.ts
            if device is None or ids is None or r.q is not unset or ts < lo or ts > hi:
                return None
            if len(ids) != last_n:  # a message's readings usually share one metric count: one lookup
                last_n = len(ids)
                group = columns.get(last_n)
                if group is None:
                    group = columns[last_n] = _Group(last_n)
                g_ts, g_dev, g_q, g_ids, g_vals = group.ts, group.dev, group.q, group.ids, group.vals
            g_ts.append(ts)
            g_dev.append(device)
            g_q.append(0 if r.quality is unset else _QUALITY[r.quality])
            g_ids += ids
            g_vals += values.values()
        out = Prepared(incoming, "telemetry", gateway_id=gw.id, seq=fast.seq, sent_at_ms=fast.sent_at,
                       items=len(readings), incarnation=fast.incarnation, digest=fast.digest, columns=columns,
                       source=(parts, devices, fast))
        if readings:
            stamps = [t for g in columns.values() for t in (min(g.ts), max(g.ts))]
            out.tmin_ms, out.tmax_ms = min(stamps), max(stamps)
            out.points = sum(len(g.vals) for g in columns.values())
        return out

    def finish(self, batch: list[Prepared]) -> None:
        """Encode the columns of every fast-path message of ``batch`` (one batch of the worker)
        into COPY rows: per metric count one conversion, one range check and one encoding for
        all messages together; each message keeps a view of its own rows (the writer stores
        only the new ones). A group holding a value out of range (or an int past float64) is
        finished message by message instead, with the general path's refusals."""
        by_n: dict[int, list[tuple[Prepared, _Group]]] = {}
        for p in batch:
            if p.columns is not None:
                for n, group in p.columns.items():
                    by_n.setdefault(n, []).append((p, group))
                p.columns = None
        for n, pairs in by_n.items():
            merged = _Group(n)
            for _, group in pairs:
                merged.ts += group.ts
                merged.dev += group.dev
                merged.q += group.q
                merged.ids += group.ids
                merged.vals += group.vals
            try:
                flat = np.array(merged.vals, dtype=np.float64)
            except OverflowError:
                flat = None
            if flat is None or bool((np.abs(flat) > self.policy.value_limit).any()):
                for p, group in pairs:
                    p.points -= len(group.vals)
                    refused: dict[str, int] = {}
                    self._finish_groups(p, [group], refused)
                    if refused and p.source is not None:
                        p.dead.append(_refusal(p.incoming, refused, [], p.source[0], p.gateway_id))
                continue
            rows = memoryview(merged.encode(flat))
            size = len(rows) // len(merged.ts)
            pos = 0
            for p, group in pairs:
                end = pos + len(group.ts) * size
                p.chunks.append(rows[pos:end])
                pos = end

    # ------------------------------------------------------------------ telemetry
    async def _telemetry(self, out: Prepared, items: list[ReadingDict], devices: dict[str, int], lo: int,
                         hi: int, refused: dict[str, int]) -> None:
        metric_ids = self.cache.metrics
        groups: dict[tuple[int, bool], _Group] = {}
        key_ids = self.key_ids
        if len(key_ids) > KEY_SETS_MAX:
            key_ids.clear()
        # fast path: the common reading (known device, in the time window, default quality, the
        # message's usual metric count) is appended straight to the main group's lists
        main = _Group(-1)
        m_ts, m_dev, m_q, m_ids, m_vals = main.ts, main.dev, main.q, main.ids, main.vals
        for reading in items:
            values: dict[str, Any] = reading["values"]
            device = devices.get(reading["device"])
            ts = reading["ts"]
            ids = key_ids.get(tuple(values))
            if (ids is not None and device is not None and lo <= ts <= hi and len(reading) == 3
                    and len(ids) == main.n):
                m_ts.append(ts)
                m_dev.append(device)
                m_q.append(0)
                m_ids += ids
                m_vals += values.values()
                continue
            n = len(values)
            if not n:
                continue
            if device is None:
                refused["unknown_device"] = refused.get("unknown_device", 0) + n
                continue
            if ts < lo or ts > hi:
                key = "time_in_future" if ts > hi else "time_too_old"
                refused[key] = refused.get(key, 0) + n
                continue
            keys = tuple(values)
            if ids is None:
                if not all(k in metric_ids for k in keys):  # new metric names: looked up (or added) once
                    await self.cache.metric_ids(set(keys))
                try:
                    ids = key_ids[keys] = [metric_ids[k] for k in keys]
                except KeyError:
                    refused["too_many_metrics"] = refused.get("too_many_metrics", 0) + n
                    continue
            quality, per_metric = 0, None
            if len(reading) > 3:  # optional "quality" / "q" present
                quality = _QUALITY[reading.get("quality", "good")]
                if q := reading.get("q"):
                    per_metric = [_QUALITY[q[k]] if k in q else quality for k in keys]
            group = groups.get((n, per_metric is not None))
            if group is None:
                if per_metric is None and main.n < 0:
                    main.n = n  # the first plain reading decides the fast path's metric count
                    group = main
                else:
                    group = _Group(n)
                groups[(n, per_metric is not None)] = group
            group.add(ts, device, quality, ids, values.values(), per_metric)
        lows, highs = self._finish_groups(out, list(groups.values()), refused)
        for row in out.text_rows:
            stamp = int(row[0].timestamp() * 1000)
            lows.append(stamp)
            highs.append(stamp)
        out.points += len(out.text_rows)
        if lows:
            out.tmin_ms, out.tmax_ms = min(lows), max(highs)

    def _finish_groups(self, out: Prepared, groups: list[_Group],
                       refused: dict[str, int]) -> tuple[list[int], list[int]]:
        """COPY rows of one message's groups (strings to ``text_rows``, values out of range
        refused); returns the lowest and highest time of each group stored."""
        lows: list[int] = []
        highs: list[int] = []
        for group in groups:
            flat, text_mask = self._numeric(group.vals)
            bad = np.abs(flat) > self.policy.value_limit
            if text_mask is not None or bad.any():
                for regrouped in self._filter(group, flat, text_mask, bad, out, refused):
                    out.chunks.append(regrouped.encode(np.array(regrouped.vals, dtype=np.float64)))
                    out.points += len(regrouped.vals)
                    lows.append(min(regrouped.ts))
                    highs.append(max(regrouped.ts))
                continue
            out.chunks.append(group.encode(flat))
            out.points += len(flat)
            lows.append(min(group.ts))
            highs.append(max(group.ts))
        return lows, highs

    @staticmethod
    def _filter(group: _Group, flat: np.ndarray[Any, np.dtype[np.float64]],
                text_mask: np.ndarray[Any, np.dtype[np.bool_]] | None, bad: np.ndarray[Any, np.dtype[np.bool_]],
                out: Prepared, refused: dict[str, int]) -> list[_Group]:
        """Slow path for the rare group with strings or out-of-range values: drop those points
        from their readings (strings go to ``telemetry_text``) and regroup by the new sizes."""
        n = group.n
        regrouped: dict[tuple[int, bool], _Group] = {}
        for r in range(len(group.ts)):
            ids: list[int] = []
            vals: list[float] = []
            quals: list[int] | None = [] if group.qs is not None else None
            for j in range(r * n, (r + 1) * n):
                quality = group.qs[j] if group.qs is not None else group.q[r]
                if text_mask is not None and text_mask[j]:
                    out.text_rows.append((ms_to_dt(group.ts[r]), group.dev[r], group.ids[j], group.vals[j], quality))
                elif bad[j]:
                    refused["value_out_of_range"] = refused.get("value_out_of_range", 0) + 1
                else:
                    ids.append(group.ids[j])
                    vals.append(float(flat[j]))
                    if quals is not None:
                        quals.append(quality)
            if ids:
                key = (len(ids), quals is not None)
                target = regrouped.get(key)
                if target is None:
                    target = regrouped[key] = _Group(len(ids))
                target.add(group.ts[r], group.dev[r], group.q[r], ids, vals, quals)
        return list(regrouped.values())

    @staticmethod
    def _numeric(values: list[Any]) -> tuple[np.ndarray[Any, np.dtype[np.float64]],
                                             np.ndarray[Any, np.dtype[np.bool_]] | None]:
        """Values as float64 (None → NaN → NULL); strings flagged in a mask for ``telemetry_text``.

        Fast path: let numpy infer the type — floats, ints and bools give a numeric array in one
        C pass; anything else (None, strings, ints past 64 bits) takes the per-value path.
        """
        try:
            array = np.array(values)
        except (OverflowError, ValueError, TypeError):
            array = None
        if array is not None and array.dtype.kind in "fiub":
            return array.astype(np.float64, copy=False), None
        out = np.empty(len(values), dtype=np.float64)
        mask = np.zeros(len(values), dtype=bool)
        for i, v in enumerate(values):
            if type(v) is str:
                mask[i] = True
                out[i] = 0.0
                continue
            try:
                out[i] = math.nan if v is None else float(v)
            except (OverflowError, ValueError, TypeError):
                out[i] = math.inf  # refused as out of range
        return out, (mask if mask.any() else None)

    # ------------------------------------------------------------------ alarms / events
    def _alarms(self, out: Prepared, gw: GatewayInfo, items: list[AlarmDict], devices: dict[str, int],
                lo: int, hi: int, refused: dict[str, int]) -> None:
        for alarm in items:
            if (reason := self._item_policy(alarm, devices, lo, hi)) is not None:
                refused[reason] = refused.get(reason, 0) + 1
                continue
            labels = alarm.get("labels") or {}
            labels_json = orjson.dumps(labels) if isinstance(labels, dict) and len(labels) <= 64 else None
            if labels_json is None or b"\\u0000" in labels_json or len(labels_json) > 8192:
                refused["bad_labels"] = refused.get("bad_labels", 0) + 1
                continue
            value = alarm.get("value")
            number = float(value) if isinstance(value, int | float) and abs(value) <= self.policy.value_limit else None
            text = value[:256] if isinstance(value, str) else None
            out.alarms.append(AlarmEventRow(
                gateway_id=gw.id, seq=out.seq, device_id=devices[alarm["device"]], device_code=alarm["device"],
                rule=alarm["rule"], state=alarm["state"],
                severity=_clean_text(alarm.get("severity", "warning"), 32) or "warning", ts=ms_to_dt(alarm["ts"]),
                message=_clean_text(alarm.get("message", "")) or "", value=number, value_text=_clean_text(text),
                work_order=bool(alarm.get("work_order", False)), labels=labels_json.decode(),
                incarnation=out.incarnation,
            ))
        out.points = len(out.alarms)

    def _events(self, out: Prepared, gw: GatewayInfo, items: list[EventDict], devices: dict[str, int],
                lo: int, hi: int, refused: dict[str, int]) -> None:
        for event in items:
            if (reason := self._item_policy(event, devices, lo, hi)) is not None:
                refused[reason] = refused.get(reason, 0) + 1
                continue
            try:
                data = orjson.dumps(event.get("data") or {})
            except (orjson.JSONEncodeError, TypeError):
                refused["bad_shape"] = refused.get("bad_shape", 0) + 1
                continue
            if b"\\u0000" in data or len(data) > 65536:
                refused["bad_value"] = refused.get("bad_value", 0) + 1
                continue
            out.events.append(DeviceEventRow(gateway_id=gw.id, seq=out.seq, device_id=devices[event["device"]],
                                             device_code=event["device"], type=event["type"],
                                             ts=ms_to_dt(event["ts"]), data=data.decode()))
        out.points = len(out.events)

    @staticmethod
    def _item_policy(item: AlarmDict | EventDict, devices: dict[str, int], lo: int, hi: int) -> str | None:
        if item["device"] not in devices:
            return "unknown_device"
        if item["ts"] > hi:
            return "time_in_future"
        if item["ts"] < lo:
            return "time_too_old"
        return None

    # ------------------------------------------------------------------ status
    async def _status(self, incoming: Incoming, parts: TopicParts) -> Prepared:
        gw = await self.cache.gateway(parts.community, parts.gateway)
        if gw is None:
            return Prepared(incoming, "dead", dead=[_unknown_gateway(incoming, parts)])
        state, health = "offline", b"{}"
        try:
            doc = orjson.loads(incoming.payload) if incoming.payload.strip() else {"state": "offline"}
        except orjson.JSONDecodeError:
            doc = {"state": incoming.payload.decode("utf-8", "replace")[:32]}
        if isinstance(doc, dict) and isinstance(doc.get("state"), str):
            state = doc["state"][:32].replace("\x00", "")
            if isinstance(doc.get("health"), dict):
                health = orjson.dumps(doc["health"])
        elif isinstance(doc, str):
            state = doc[:32].replace("\x00", "")
        if len(health) > 65536 or b"\\u0000" in health:
            health = b"{}"
        online = state not in ("offline", "lost")
        return Prepared(incoming, "status", gateway_id=gw.id,
                        status=(online, ms_to_dt(incoming.received_ms), state, health.decode()))
