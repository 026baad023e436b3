"""The edge ⇄ cloud wire contract, version 1 (documented with examples in ``docs/wire.md``).

Topics::

    guanjia/v1/{community}/{gateway}/telemetry   batches of readings        (QoS 1, sequenced)
    guanjia/v1/{community}/{gateway}/alarms      alarm raise/clear events   (QoS 1, sequenced)
    guanjia/v1/{community}/{gateway}/events      device/gateway events      (QoS 1, sequenced)
    guanjia/v1/{community}/{gateway}/status      retained health; last-will "offline"
    guanjia/v1/{community}/{gateway}/cmd         downward commands (writes, config push)
    guanjia/v1/{community}/{gateway}/cmd/reply   command acknowledgements

Every sequenced message carries its outbox's ``incarnation`` (a random id created with the outbox
file) and that outbox's own monotonically increasing ``seq``: the outbox assigns it once and keeps
it across resends, so the cloud deduplicates on ``(gateway, incarnation, seq)`` *and* the content
digest (:func:`content_digest`) and sees gaps per incarnation. A wiped or replaced outbox starts a
new incarnation from seq 1 instead of colliding with the old numbers. Schema 1 messages (older
edges) have no incarnation and are read as :data:`LEGACY_INCARNATION`. Alarms jump the queue,
so sequence numbers arrive out of order by design; the cloud tracks the set of seen numbers, not
only a high-water mark.

Payloads are JSON (UTF-8) objects, encoded with orjson: readable with ``mosquitto_sub``, and
fast enough that decoding is not the ingest bottleneck (measured in ``make bench``). Times are
integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypedDict

import orjson

from guanjia.core.errors import WireError

SCHEMA_VERSION: Final = 2
"""Version 2 adds ``incarnation`` to sequenced messages and storage confirmations."""
SUPPORTED_SCHEMAS: Final = (1, 2)
LEGACY_INCARNATION: Final = "legacy"
"""The incarnation of a schema 1 message (an edge older than incarnations)."""
_INCARNATION_RE: Final = re.compile(r"^[0-9a-f]{16}$")
TOPIC_ROOT: Final = "guanjia/v1"
MAX_PAYLOAD_BYTES: Final = 1 << 20
"""Largest message either side accepts; the broker is configured with the same limit."""

MAX_READINGS_PER_MESSAGE: Final = 20_000
_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

Kind = Literal["telemetry", "alarms", "events", "status", "cmd", "cmd/reply"]
SEQUENCED_KINDS: Final = ("telemetry", "alarms", "events")
UPWARD_KINDS: Final = ("telemetry", "alarms", "events", "status", "cmd/reply")


class Quality(enum.IntEnum):
    """Why a value is (un)trustworthy. Stored as a smallint; sent by name."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2
    COMM_ERROR = 3
    TIMEOUT = 4
    ILLEGAL_FUNCTION = 5
    ILLEGAL_ADDRESS = 6
    ILLEGAL_VALUE = 7
    DEVICE_FAILURE = 8
    DEVICE_BUSY = 9
    DECODE_ERROR = 10
    OFFLINE = 11
    CLOCK_SKEW = 12

    @property
    def wire(self) -> str:
        return self.name.lower()

    @classmethod
    def from_wire(cls, name: str) -> Quality:
        try:
            return cls[name.upper()]
        except KeyError as exc:
            raise WireError("bad_quality", f"unknown quality {name!r}") from exc


QUALITY_BY_NAME: Final = {q.wire: q for q in Quality}


def valid_incarnation(value: object) -> bool:
    """An incarnation is 16 lowercase hex digits (random bits), or ``legacy``: the numbering of
    schema 1 messages, which an outbox file written by an older agent keeps using after an upgrade."""
    return isinstance(value, str) and (value == LEGACY_INCARNATION or bool(_INCARNATION_RE.match(value)))


def content_digest(items: list[Any]) -> bytes:
    """The digest of a batch's data (its items, not ``sent_at`` or the envelope), stored with the batch.

    Why: a resend of the same batch must compare equal and a different batch under the same
    ``(gateway, incarnation, seq)`` must not (``seq_conflict``). orjson keeps the key order it
    parsed and writes floats round-trip exactly, so re-encoding the decoded items gives the bytes the
    edge spliced in; BLAKE2b-128 is collision-proof for this and costs microseconds per batch.
    """
    return hashlib.blake2b(orjson.dumps(items), digest_size=16).digest()


def valid_id(value: str) -> bool:
    """Ids (community, gateway, device, metric) are short and topic-safe: no '/', '+', '#'."""
    return bool(_ID_RE.match(value))


# --------------------------------------------------------------------------- topics


def topic(community: str, gateway: str, kind: Kind) -> str:
    for name, value in (("community", community), ("gateway", gateway)):
        if not valid_id(value):
            raise WireError("bad_id", f"{name} {value!r} is not a valid id")
    return f"{TOPIC_ROOT}/{community}/{gateway}/{kind}"


def gateway_prefix(community: str, gateway: str) -> str:
    return f"{TOPIC_ROOT}/{community}/{gateway}"


@dataclass(frozen=True, slots=True)
class TopicParts:
    community: str
    gateway: str
    kind: str


def parse_topic(value: str) -> TopicParts:
    parts = value.split("/")
    if len(parts) < 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise WireError("bad_topic", value[:200])
    kind = "/".join(parts[4:])
    if kind not in (*UPWARD_KINDS, "cmd") or not valid_id(parts[2]) or not valid_id(parts[3]):
        raise WireError("bad_topic", value[:200])
    return TopicParts(parts[2], parts[3], kind)


def shared_subscription(group: str, kind: str = "+") -> str:
    """MQTT v5 shared subscription so several ingest workers split one stream."""
    return f"$share/{group}/{TOPIC_ROOT}/+/+/{kind}"


# --------------------------------------------------------------------------- payload shapes

Scalar = float | int | bool | str | None


class ReadingDict(TypedDict, total=False):
    device: str
    ts: int
    values: dict[str, Scalar]
    quality: str
    q: dict[str, str]


class AlarmDict(TypedDict, total=False):
    device: str
    rule: str
    state: Literal["raise", "clear"]
    severity: str
    ts: int
    message: str
    value: Scalar
    work_order: bool
    labels: dict[str, str]


class EventDict(TypedDict, total=False):
    device: str
    type: str
    ts: int
    data: dict[str, Any]


@dataclass(slots=True)
class Envelope:
    """A decoded upward message. ``items`` are readings, alarms or events depending on ``kind``."""

    kind: str
    gateway: str
    community: str
    seq: int
    sent_at: int
    items: list[dict[str, Any]] = field(default_factory=list)
    raw: bytes = b""
    incarnation: str = LEGACY_INCARNATION


_ITEMS_KEY: Final = {"telemetry": "readings", "alarms": "alarms", "events": "events"}


def encode(
    kind: Literal["telemetry", "alarms", "events"],
    *,
    gateway: str,
    community: str,
    seq: int,
    sent_at: int,
    items: list[Any],
    incarnation: str | None = None,
) -> bytes:
    """Encode a sequenced upward message: schema 2 with ``incarnation``, or schema 1 (what an edge
    older than incarnations sends) when it is ``None``."""
    if incarnation is None:
        head: dict[str, Any] = {"schema": 1, "kind": kind, "gateway": gateway, "community": community}
    else:
        head = {"schema": SCHEMA_VERSION, "kind": kind, "gateway": gateway, "community": community,
                "incarnation": incarnation}
    return orjson.dumps({**head, "seq": seq, "sent_at": sent_at, _ITEMS_KEY[kind]: items})


def encode_status(gateway: str, community: str, state: str, ts: int, health: Mapping[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "schema": SCHEMA_VERSION,
            "kind": "status",
            "gateway": gateway,
            "community": community,
            "state": state,
            "ts": ts,
            "health": dict(health),
        }
    )


def _require(cond: bool, reason: str, detail: str) -> None:
    if not cond:
        raise WireError(reason, detail)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def decode(payload: bytes, parts: TopicParts | None = None) -> Envelope:
    """Decode and structurally validate a sequenced message; raise :class:`WireError` with a reason.

    Checks here are the contract (shape, types, ids, sizes, finite numbers). Policy checks such as
    "is this gateway known" or "is the timestamp plausible" belong to the cloud.
    """
    _require(len(payload) <= MAX_PAYLOAD_BYTES, "too_large", f"{len(payload)} bytes")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise WireError("bad_json", str(exc)[:200]) from exc
    _require(isinstance(doc, dict), "bad_shape", "payload is not a JSON object")
    schema = doc.get("schema")
    _require(_is_int(schema) and schema in SUPPORTED_SCHEMAS, "bad_schema",
             f"schema {schema!r} not supported (want 1 or 2)")
    kind = doc.get("kind")
    _require(kind in _ITEMS_KEY, "bad_kind", f"kind {kind!r}")
    gateway, community = doc.get("gateway"), doc.get("community")
    _require(isinstance(gateway, str) and valid_id(gateway), "bad_id", "gateway")
    _require(isinstance(community, str) and valid_id(community), "bad_id", "community")
    if parts is not None:
        _require(
            parts.gateway == gateway and parts.community == community and parts.kind == kind,
            "topic_mismatch",
            f"payload says {community}/{gateway}/{kind}",
        )
    # schema 1 has no incarnation (a stray field there is not trusted); schema 2 must carry a valid one
    incarnation = LEGACY_INCARNATION if schema == 1 else doc.get("incarnation")
    _require(valid_incarnation(incarnation) or schema == 1, "bad_incarnation", repr(incarnation)[:40])
    assert isinstance(incarnation, str)
    seq, sent_at = doc.get("seq"), doc.get("sent_at")
    _require(_is_int(seq) and 0 <= seq < 2**63, "bad_seq", repr(seq)[:40])
    _require(_is_int(sent_at), "bad_time", "sent_at")
    items = doc.get(_ITEMS_KEY[kind])
    _require(isinstance(items, list), "bad_shape", f"{_ITEMS_KEY[kind]} is not a list")
    _require(len(items) <= MAX_READINGS_PER_MESSAGE, "too_large", f"{len(items)} items")
    check = _CHECKS[kind]
    for index, item in enumerate(items):
        check(item, index)
    return Envelope(kind, gateway, community, seq, sent_at, items, payload, incarnation)


def _check_common(item: object, index: int) -> dict[str, Any]:
    _require(isinstance(item, dict), "bad_shape", f"item {index} is not an object")
    assert isinstance(item, dict)
    device = item.get("device")
    if not (isinstance(device, str) and valid_id(device)):
        raise WireError("bad_id", f"item {index} device")
    if not _is_int(item.get("ts")):
        raise WireError("bad_time", f"item {index} ts")
    return item


def _check_value(value: object, where: str) -> None:
    if isinstance(value, float):
        _require(math.isfinite(value), "bad_value", f"{where} is not finite")
    elif isinstance(value, str):
        _require(len(value) <= 256, "bad_value", f"{where} string too long")
    else:
        _require(value is None or isinstance(value, int | bool), "bad_value", f"{where} has a bad type")


_VALID_IDS: set[str] = set()
"""Device and metric ids already seen valid (bounded): skips the regex for the same few names."""


def _check_reading(item: object, index: int) -> None:
    # hot path (every reading of every message): check cheaply, build messages only on failure
    if not (isinstance(item, dict) and type(item.get("ts")) is int and type(item.get("device")) is str
            and item["device"] in _VALID_IDS):
        _check_common(item, index)  # raises the exact error, or the device id is new and valid
        if len(_VALID_IDS) < 100_000:
            _VALID_IDS.add(item["device"])  # type: ignore[index]
    assert isinstance(item, dict)
    reading = item
    values = reading.get("values")
    if not (isinstance(values, dict) and len(values) <= 1000):
        raise WireError("bad_shape", f"reading {index} values")
    for metric, value in values.items():
        if metric not in _VALID_IDS:
            if not valid_id(metric):
                raise WireError("bad_id", f"reading {index} metric {metric[:40]!r}")
            if len(_VALID_IDS) < 100_000:
                _VALID_IDS.add(metric)
        if type(value) is float:
            if not math.isfinite(value):
                raise WireError("bad_value", f"reading {index} {metric} is not finite")
        elif type(value) is not int:
            _check_value(value, f"reading {index} {metric}")
    quality = reading.get("quality", "good")
    if quality not in QUALITY_BY_NAME:
        raise WireError("bad_quality", f"reading {index}: {str(quality)[:40]}")
    q = reading.get("q")
    if q is not None:
        if not isinstance(q, dict):
            raise WireError("bad_shape", f"reading {index} q")
        assert isinstance(q, dict)
        for name in q.values():
            _require(name in QUALITY_BY_NAME, "bad_quality", f"reading {index}: {str(name)[:40]}")


def _check_alarm(item: object, index: int) -> None:
    alarm = _check_common(item, index)
    _require(isinstance(alarm.get("rule"), str) and valid_id(alarm["rule"]), "bad_id", f"alarm {index} rule")
    _require(alarm.get("state") in ("raise", "clear"), "bad_shape", f"alarm {index} state")
    _require(isinstance(alarm.get("severity", "warning"), str), "bad_shape", f"alarm {index} severity")
    _require(isinstance(alarm.get("message", ""), str), "bad_shape", f"alarm {index} message")
    _check_value(alarm.get("value"), f"alarm {index} value")


def _check_event(item: object, index: int) -> None:
    event = _check_common(item, index)
    _require(isinstance(event.get("type"), str) and valid_id(event["type"]), "bad_id", f"event {index} type")
    _require(isinstance(event.get("data", {}), dict), "bad_shape", f"event {index} data")


_CHECKS: Final = {"telemetry": _check_reading, "alarms": _check_alarm, "events": _check_event}
