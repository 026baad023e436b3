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

Downward on ``cmd`` travel two things: write commands (answered on ``cmd/reply``) and the cloud's
``stored`` confirmations (no reply); both are encoded and parsed here, like every other payload,
so the edge and the cloud import one contract instead of each spelling half of it.

Payloads are JSON (UTF-8) objects, encoded with orjson: readable with ``mosquitto_sub``, and
fast enough that decoding is not the ingest bottleneck (measured in ``make bench``). Times are
integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Generic, Literal, NotRequired, TypeAlias, TypedDict, TypeVar, cast

import msgspec
import orjson

from guanjia.core.errors import WireError

SCHEMA_VERSION: Final = 2
"""Version 2 adds ``incarnation`` to sequenced messages and storage confirmations."""
SUPPORTED_SCHEMAS: Final = (1, 2)
LEGACY_INCARNATION: Final = "legacy"
"""The incarnation of a schema 1 message (an edge older than incarnations)."""
_INCARNATION_RE: Final = re.compile(r"^[0-9a-f]{16}$")
_VALID_IDS: set[str] = set()
"""Ids already seen valid (bounded by :data:`_VALID_IDS_MAX`): skips the regex for the same few names."""
_VALID_IDS_MAX: Final = 100_000
TOPIC_ROOT: Final = "guanjia/v1"
MAX_PAYLOAD_BYTES: Final = 1 << 20
"""Largest message either side accepts; the broker is configured with the same limit."""

MAX_READINGS_PER_MESSAGE: Final = 20_000
_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

Kind = Literal["telemetry", "alarms", "events", "status", "cmd", "cmd/reply"]
SequencedKind = Literal["telemetry", "alarms", "events"]
SEQUENCED_KINDS: Final[tuple[SequencedKind, ...]] = ("telemetry", "alarms", "events")
"""The kinds that carry ``incarnation`` and ``seq`` and are confirmed with ``stored``."""
MAX_SEQ: Final = 2**63 - 1
"""The largest sequence number either side takes (decoded envelopes, confirmation ranges, the
edge outbox). Why this bound: a seq lives in PostgreSQL ``bigint`` columns (``ingest_batches``,
``ingest_quarantine``, ``gateway_incarnations``) and is the edge outbox's SQLite ``INTEGER PRIMARY
KEY``; both are signed 64-bit, so anything larger could be decoded but never stored. It is one
bound for the whole contract (confirmations used to stop at ``2**62``, a margin no edge reaches:
at 1000 batches a second ``2**62`` takes 146 million years, and the outbox clips every confirmed
range to the seqs it has handed out anyway)."""
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
    if type(value) is not str:
        return False
    if value in _VALID_INCARNATIONS:
        return True
    if value != LEGACY_INCARNATION and _INCARNATION_RE.match(value) is None:
        return False
    if len(_VALID_INCARNATIONS) < _VALID_IDS_MAX:
        _VALID_INCARNATIONS.add(value)
    return True


_VALID_INCARNATIONS: set[str] = set()


def content_digest(items: list[Any]) -> bytes:
    """The digest of a batch's data (its items, not ``sent_at`` or the envelope), stored with the batch.

    Why: a resend of the same batch must compare equal and a different batch under the same
    ``(gateway, incarnation, seq)`` must not (``seq_conflict``). orjson keeps the key order it
    parsed and writes floats round-trip exactly, so re-encoding the decoded items gives the bytes the
    edge spliced in; BLAKE2b-128 is collision-proof for this and costs microseconds per batch.
    """
    return hashlib.blake2b(orjson.dumps(items), digest_size=16).digest()


def valid_id(value: str) -> bool:
    """Ids (community, gateway, device, metric) are short and topic-safe: no '/', '+', '#'.

    Ids already seen valid skip the regex (:data:`_VALID_IDS`): every message names its community
    and gateway twice (topic and payload), and the same few thousand ids recur all day."""
    if value in _VALID_IDS:
        return True
    if _ID_RE.match(value) is None:
        return False
    if len(_VALID_IDS) < _VALID_IDS_MAX:
        _VALID_IDS.add(value)
    return True


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


class ReadingDict(TypedDict):
    """One device at one poll time (an item of ``readings``). ``quality`` applies to the whole
    reading (absent: ``good``); ``q`` overrides it per metric. Absent keys stay absent on the wire:
    the cloud's fast path recognises a plain reading by its three keys."""

    device: str
    ts: int
    values: dict[str, Scalar]
    quality: NotRequired[str]
    q: NotRequired[dict[str, str]]


class AlarmDict(TypedDict):
    """An alarm raise or clear (an item of ``alarms``); identity is ``(device, rule)``."""

    device: str
    rule: str
    state: Literal["raise", "clear"]
    ts: int
    severity: NotRequired[str]
    message: NotRequired[str]
    value: NotRequired[Scalar]
    work_order: NotRequired[bool]
    labels: NotRequired[dict[str, str]]


class EventDict(TypedDict):
    """A device or gateway event (an item of ``events``); ``data`` is free-form JSON."""

    device: str
    type: str
    ts: int
    data: NotRequired[dict[str, Any]]


K = TypeVar("K", bound=str)
T = TypeVar("T", ReadingDict, AlarmDict, EventDict)


@dataclass(slots=True)
class Envelope(Generic[K, T]):
    """A decoded sequenced message. Generic in its kind and item type so that checking ``kind``
    narrows ``items`` (see :data:`Sequenced`): the items were checked against the kind's TypedDict
    by :func:`decode`, and the type says so instead of every user casting ``dict[str, Any]``."""

    kind: K
    gateway: str
    community: str
    seq: int
    sent_at: int
    items: list[T] = field(default_factory=list)
    raw: bytes = b""
    incarnation: str = LEGACY_INCARNATION
    items_json: bytes = b""
    """The items' canonical JSON (what :func:`content_digest` hashes) when the decoder already
    proved it (:func:`decode`'s fast path); empty otherwise."""

    @property
    def digest(self) -> bytes:
        """:func:`content_digest` of the items, without re-encoding them when the decoder kept their JSON."""
        if self.items_json:
            return hashlib.blake2b(self.items_json, digest_size=16).digest()
        return content_digest(self.items)


Telemetry: TypeAlias = Envelope[Literal["telemetry"], ReadingDict]
Alarms: TypeAlias = Envelope[Literal["alarms"], AlarmDict]
Events: TypeAlias = Envelope[Literal["events"], EventDict]
Sequenced: TypeAlias = Telemetry | Alarms | Events
"""What :func:`decode` returns: ``if env.kind == "telemetry"`` makes ``env.items`` a list of readings."""

_ITEMS_KEY: Final[dict[str, str]] = {"telemetry": "readings", "alarms": "alarms", "events": "events"}


def encode(
    kind: SequencedKind,
    *,
    gateway: str,
    community: str,
    seq: int,
    sent_at: int,
    items: Sequence[Mapping[str, object]],
    incarnation: str | None = None,
) -> bytes:
    """Encode a sequenced upward message: schema 2 with ``incarnation``, or schema 1 (what an edge
    older than incarnations sends) when it is ``None``.

    ``items`` is typed loosely (any mappings, not :class:`ReadingDict` …) on purpose: tests, the
    fuzzer and the benchmarks encode malformed items to see :func:`decode` refuse them, and the
    contract is enforced where a message is received, not where it is built."""
    return encode_spliced(kind, gateway=gateway, community=community, seq=seq, sent_at=sent_at,
                          body=orjson.dumps(items), incarnation=incarnation)


def encode_spliced(kind: str, *, gateway: str, community: str, seq: int, sent_at: int, body: bytes,
                   incarnation: str | None) -> bytes:
    """:func:`encode` with the items already encoded (``body``, a JSON array): the edge outbox
    stores each batch's items encoded once, and splicing them in means resending a 500 kB batch
    does not re-serialise it. The bytes are those of :func:`encode` (orjson writes compact JSON,
    so the envelope's closing brace is its last byte)."""
    if incarnation is None:
        head: dict[str, Any] = {"schema": 1, "kind": kind, "gateway": gateway, "community": community}
    else:
        head = {"schema": SCHEMA_VERSION, "kind": kind, "gateway": gateway, "community": community,
                "incarnation": incarnation}
    head["seq"], head["sent_at"] = seq, sent_at
    return orjson.dumps(head)[:-1] + b',"' + _ITEMS_KEY[kind].encode() + b'":' + body + b"}"


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


def status_state(payload: bytes) -> str | None:
    """The ``state`` (``online``/``offline``) of a ``status`` payload, or ``None`` when it has none.
    Read loosely: the health object beside it belongs to the edge and is not checked here."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    state = doc.get("state") if isinstance(doc, dict) else None
    return state if state in ("online", "offline") else None


# --------------------------------------------------------------------------- stored confirmations

MAX_RANGES_PER_MESSAGE: Final = 1000
"""The cloud puts at most this many ranges in one ``stored`` message (more go in further ones)."""
MAX_STORED_RANGES: Final = 10_000
"""The edge reads at most this many ranges of one ``stored`` message (a bound on the work a
malformed or hostile confirmation can cause; ten times what the cloud sends)."""


class StoredDict(TypedDict):
    """The cloud's storage confirmation, down on ``cmd`` (see docs/wire.md, "Storage confirmations").

    ``seqs`` are inclusive ``[first, last]`` ranges of the outbox incarnation ``incarnation``; a
    cloud older than schema 2 sent no ``incarnation``."""

    schema: int
    kind: Literal["stored"]
    incarnation: NotRequired[str]
    seqs: list[list[int]]
    ts: int
    behind: NotRequired[bool]
    """Present (true) when the cloud's ingest is behind: the edge restarts its resend timers
    instead of resending what is only queued (issue 21). Older edges ignore it."""


def merge_seqs(seqs: Iterable[int]) -> list[list[int]]:
    """Sorted inclusive ranges covering ``seqs``."""
    ranges: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


def encode_stored(incarnation: str, seqs: Iterable[int], ts: int, *, behind: bool = False) -> list[bytes]:
    """The ``stored`` payloads confirming ``seqs`` of one incarnation: merged into ranges, split
    every :data:`MAX_RANGES_PER_MESSAGE` ranges (so one message stays far below the payload limit);
    ``behind`` adds the hint (the field is left out otherwise, so the common message is unchanged)."""
    ranges = merge_seqs(seqs)
    out: list[bytes] = []
    for start in range(0, len(ranges), MAX_RANGES_PER_MESSAGE):
        doc = StoredDict(schema=SCHEMA_VERSION, kind="stored", incarnation=incarnation,
                         seqs=ranges[start:start + MAX_RANGES_PER_MESSAGE], ts=ts)
        if behind:
            doc["behind"] = True
        out.append(orjson.dumps(doc))
    return out


def stored_behind(payload: bytes) -> bool:
    """True when a ``stored`` confirmation carries the cloud's ``behind`` hint (see :class:`StoredDict`)."""
    if b'"behind"' not in payload:
        return False
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("behind") is True


INGEST_STATUS_FILTER: Final = f"{TOPIC_ROOT}/_cloud/ingest/+/behind"
"""What an edge subscribes to for the ingest's retained ``behind`` status (one topic per worker).

Why under ``_cloud``: no community id starts with ``_`` (:func:`valid_id`), so the topic cannot
collide with a gateway's; six levels, so the ingest's own ``+/+/status`` subscription skips it."""
MAX_BEHIND_HOLD_S: Final = 3600.0
"""The longest hold an edge takes from one status message, whatever its ``expiry_s`` says."""


class IngestBehindDict(TypedDict):
    """The retained ``behind`` status of one ingest worker (``…/_cloud/ingest/{worker}/behind``).

    Published while the worker's broker-side backlog exceeds its threshold, refreshed every few
    seconds, with the MQTT v5 message expiry ``expiry_s`` so a dead worker's status vanishes from
    the broker; cleared (an empty retained payload) when caught up. An edge holds its resend
    timers for ``expiry_s`` after receiving one, by its own clock (no clock comparison)."""

    schema: int
    kind: Literal["ingest_behind"]
    worker: str
    lag_s: float
    expiry_s: float
    ts: int


def ingest_status_topic(worker: str) -> str:
    """The retained ``behind`` status topic of ingest worker ``worker`` (its MQTT client id)."""
    return f"{TOPIC_ROOT}/_cloud/ingest/{worker}/behind"


def encode_ingest_behind(worker: str, lag_s: float, expiry_s: float, ts: int) -> bytes:
    return orjson.dumps(IngestBehindDict(schema=SCHEMA_VERSION, kind="ingest_behind", worker=worker,
                                         lag_s=round(lag_s, 1), expiry_s=expiry_s, ts=ts))


def _message_of_kind(payload: bytes, kind: str) -> dict[str, Any] | None:
    """The JSON object of a down message of ``kind`` (its ``"kind"`` field), or ``None`` for an
    empty payload, invalid JSON or another kind — the shared first step of the edge's parsers of
    cloud messages (a byte search first: most payloads on the topic are of another kind)."""
    if not payload or f'"{kind}"'.encode() not in payload:
        return None
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        return None
    return doc


def parse_ingest_behind(payload: bytes) -> float | None:
    """How long (s) an ``ingest_behind`` status says to hold resends, capped at
    :data:`MAX_BEHIND_HOLD_S`; ``None`` for a cleared status (empty payload) or anything else."""
    doc = _message_of_kind(payload, "ingest_behind")
    if doc is None:
        return None
    expiry = doc.get("expiry_s")
    if isinstance(expiry, bool) or not isinstance(expiry, int | float) or expiry <= 0:
        return None
    return float(min(expiry, MAX_BEHIND_HOLD_S))


def parse_stored(payload: bytes, incarnation: str) -> list[tuple[int, int]] | None:
    """The seq ranges of a cloud ``stored`` confirmation (``{"kind": "stored", "incarnation": …,
    "seqs": [[a, b], …]}``, see docs/wire.md), or ``None`` when ``payload`` is not one (then it is a
    write command).

    Why the edge tells them apart before its command handler: a confirmation is no command — no
    reply, no audit row — only an outbox update. Malformed ranges are skipped, never raised. A
    confirmation of another incarnation (the wiped outbox before this one) names seqs of other
    batches: it confirms nothing here (``[]``). One without the field comes from a cloud older than
    incarnations and is taken as it was."""
    doc = _message_of_kind(payload, "stored")
    if doc is None:
        return None
    if doc.get("incarnation", incarnation) != incarnation:
        return []
    seqs = doc.get("seqs")
    ranges: list[tuple[int, int]] = []
    if isinstance(seqs, list):
        for item in seqs[:MAX_STORED_RANGES]:
            if (isinstance(item, list) and len(item) == 2 and all(type(v) is int for v in item)
                    and 1 <= item[0] <= item[1] <= MAX_SEQ):
                ranges.append((item[0], item[1]))
    return ranges


def peek_sequence(payload: bytes) -> tuple[str, int | None]:
    """``(incarnation, seq)`` read loosely from a sequenced payload that did not :func:`decode`.

    Why: the cloud confirms a dead-lettered batch too (the dead letter keeps the payload and
    resending would never help), so it needs the numbers of a message it refused. Same rules as
    :func:`decode` where they apply (schema 1 or no valid incarnation → ``legacy``); a seq that is
    not an int in ``1..MAX_SEQ`` is ``None`` (nothing to confirm)."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return LEGACY_INCARNATION, None
    if not isinstance(doc, dict):
        return LEGACY_INCARNATION, None
    value = doc.get("incarnation") if doc.get("schema") != 1 else None
    seq = doc.get("seq")
    return (value if isinstance(value, str) and valid_incarnation(value) else LEGACY_INCARNATION,
            seq if type(seq) is int and 1 <= seq <= MAX_SEQ else None)


# --------------------------------------------------------------------------- commands and replies


class CommandDict(TypedDict):
    """A command, down on ``cmd``. The edge reads ``id``, ``type`` (``write``, the default, sets a
    point to ``value``; ``action`` asks the device to perform the profile command named in
    ``point``, e.g. a gate's ``open``, and has no value), ``device``, ``point``, ``value``,
    ``expires`` and echoes ``reply_to``;
    ``schema``, ``kind``, ``issued_by`` and ``ts`` are for people reading the broker and are not checked.

    ``expires`` (epoch ms, optional) is the moment after which the edge refuses the command
    (reason ``expired``) instead of applying it: the cloud never sends a command after its expiry,
    and this second check covers one that sat in a queue on the way (a setpoint written an hour
    late, unannounced, is worse than one refused)."""

    id: str
    device: str
    point: str
    value: NotRequired[float | int | bool | str]
    type: NotRequired[Literal["write", "action"]]
    reply_to: NotRequired[str]
    expires: NotRequired[int]
    schema: NotRequired[int]
    kind: NotRequired[Literal["cmd"]]
    issued_by: NotRequired[str]
    ts: NotRequired[int]


class ReplyDict(TypedDict):
    """The edge's answer on ``cmd/reply``: ``ok`` with ``reason`` ``None``, or refused with a reason
    code (see docs/wire.md). ``id``, ``device``, ``point``, ``value`` and ``reply_to`` are echoed
    from the command as it came (``None`` when absent), so even a malformed command is answered."""

    schema: int
    kind: Literal["cmd/reply"]
    gateway: str
    community: str
    id: Any
    ok: bool
    reason: str | None
    detail: str
    device: Any
    point: Any
    value: Any
    ts: int
    reply_to: NotRequired[Any]


@dataclass(frozen=True, slots=True)
class WriteCommand:
    """A command that passed :func:`parse_command`: the shape is right; whether the device and
    point exist and the value fits is the edge's check against the device profile."""

    id: str
    device: str
    point: str
    value: float | int | bool | str | None
    expires: int | None = None
    """epoch ms after which the edge refuses it (``expired``); ``None``: no expiry"""
    type: Literal["write", "action"] = "write"
    """``action``: ``point`` names a command of the device profile and ``value`` is ``None``"""


def encode_command(command: WriteCommand, *, ts: int, issued_by: str | None = None,
                   reply_to: str | None = None) -> bytes:
    """The ``cmd`` payload for ``command`` (what a cloud or an operator's tool sends)."""
    doc = CommandDict(schema=SCHEMA_VERSION, kind="cmd", id=command.id, type=command.type, device=command.device,
                      point=command.point, ts=ts)
    if command.value is not None:
        doc["value"] = command.value
    if command.expires is not None:
        doc["expires"] = command.expires
    if issued_by is not None:
        doc["issued_by"] = issued_by
    if reply_to is not None:
        doc["reply_to"] = reply_to
    return orjson.dumps(doc)


def decode_command(payload: bytes) -> dict[str, Any]:
    """The command's JSON object, unchecked (:func:`parse_command` checks it). Why two steps: a
    refused command is still answered, and the reply echoes what the object holds."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise WireError("bad_command", "payload is not a JSON object")
    return doc


def parse_command(doc: Mapping[str, Any]) -> WriteCommand:
    """Check a command's shape; raise :class:`WireError` with the reply's reason code
    (``bad_command``, ``unsupported``, ``bad_value``) and detail."""
    cmd_id, device, point, value = doc.get("id"), doc.get("device"), doc.get("point"), doc.get("value")
    if not isinstance(cmd_id, str) or not cmd_id:
        raise WireError("bad_command", "'id' must be a non-empty string")
    kind = doc.get("type", "write")
    if kind not in ("write", "action"):
        raise WireError("unsupported", f"command type {kind!r} is not supported (write, action)")
    if not isinstance(device, str) or not isinstance(point, str):
        raise WireError("bad_command", "'device' and 'point' must be strings")
    if kind == "action":
        value = None   # an action has no value; whatever came is not used
    elif isinstance(value, dict | list) or value is None:
        raise WireError("bad_value", "'value' must be a number, boolean or enum name")
    expires = doc.get("expires")
    if expires is not None and not (_is_int(expires) and 0 < expires <= MAX_SEQ):
        raise WireError("bad_command", "'expires' must be epoch milliseconds")
    return WriteCommand(cmd_id, device, point, value, expires, "action" if kind == "action" else "write")


def encode_reply(command: Mapping[str, Any], *, gateway: str, community: str, ok: bool, reason: str | None,
                 detail: str, ts: int) -> bytes:
    """The ``cmd/reply`` payload answering ``command`` (its JSON object, see :class:`ReplyDict`)."""
    reply = ReplyDict(
        schema=SCHEMA_VERSION, kind="cmd/reply", gateway=gateway, community=community,
        id=command.get("id"), ok=ok, reason=reason, detail=detail, device=command.get("device"),
        point=command.get("point"), value=command.get("value"), ts=ts)
    if "reply_to" in command:
        reply["reply_to"] = command["reply_to"]
    return orjson.dumps(reply)


# --------------------------------------------------------------------------- decoding sequenced messages


@dataclass(frozen=True, slots=True)
class CommandReply:
    """A ``cmd/reply`` as the cloud reads it (:func:`parse_reply`)."""

    id: str
    ok: bool
    reason: str | None
    detail: str


def parse_reply(payload: bytes) -> CommandReply:
    """Check a ``cmd/reply`` payload (see :class:`ReplyDict`); raise :class:`WireError`
    (``bad_reply``) when it is not one. Only the fields the cloud stores are read; the echoed
    device, point and value are the edge's copy of what the cloud already has."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or doc.get("kind", "cmd/reply") != "cmd/reply":
        raise WireError("bad_reply", "payload is not a cmd/reply object")
    cmd_id, ok, reason, detail = doc.get("id"), doc.get("ok"), doc.get("reason"), doc.get("detail", "")
    if not isinstance(cmd_id, str) or not cmd_id or not isinstance(ok, bool):
        raise WireError("bad_reply", "'id' (string) and 'ok' (boolean) are required")
    if reason is not None and not isinstance(reason, str):
        raise WireError("bad_reply", "'reason' must be a string or null")
    return CommandReply(cmd_id[:64], ok, None if ok else (reason or "refused")[:64],
                        detail[:500] if isinstance(detail, str) else "")


def _require(cond: bool, reason: str, detail: str) -> None:
    if not cond:
        raise WireError(reason, detail)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""Why the bound: orjson reads an integer past 64 bits as a float, msgspec as an int; such a
message takes the checked path, whose reading (orjson's) is the contract."""


class WireReading(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A reading as :func:`decode_telemetry` takes it: numbers only (``None`` and strings take the
    checked path), no unknown keys (they would be part of the digest but not of this type)."""

    device: str
    ts: _Int64
    values: dict[str, float | _Int64 | bool]
    quality: str | msgspec.UnsetType = msgspec.UNSET
    q: dict[str, str] | msgspec.UnsetType = msgspec.UNSET


class _WireTelemetry(msgspec.Struct):
    schema: Literal[1, 2]
    kind: Literal["telemetry"]
    gateway: str
    community: str
    seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
    sent_at: _Int64
    readings: Annotated[list[WireReading], msgspec.Meta(max_length=MAX_READINGS_PER_MESSAGE)]
    incarnation: str | None = None


@dataclass(frozen=True, slots=True)
class FastTelemetry:
    """A telemetry message :func:`decode_telemetry` vouched for: typed readings (no dicts)."""

    gateway: str
    community: str
    seq: int
    sent_at: int
    incarnation: str
    readings: list[WireReading]
    items_json: bytes
    """The readings' canonical JSON: :func:`content_digest` hashes exactly these bytes."""

    @property
    def digest(self) -> bytes:
        return hashlib.blake2b(self.items_json, digest_size=16).digest()

    def items(self) -> list[ReadingDict]:
        """The readings as the dicts :func:`decode` gives (for readers that want the wire shape)."""
        return cast(list[ReadingDict], msgspec.to_builtins(self.readings))

    def envelope(self, payload: bytes) -> Telemetry:
        """What :func:`decode` returns for this message."""
        return cast(Telemetry, Envelope("telemetry", self.gateway, self.community, self.seq, self.sent_at,
                                        self.items(), payload, self.incarnation, self.items_json))


_TELEMETRY_DECODER: Final = msgspec.json.Decoder(_WireTelemetry)
_ITEMS_ENCODER: Final = msgspec.json.Encoder()
_READINGS_KEY: Final = b',"readings":'


def decode_telemetry(payload: bytes, parts: TopicParts | None) -> FastTelemetry | None:
    """The common telemetry message decoded and validated in C (msgspec), or ``None`` when this
    path cannot vouch for it — then :func:`decode`'s checked path decides, with its exact reason.

    Why it is exact: the msgspec types accept a subset of what the checked path accepts (ints
    that are not bools, number values only, known keys only, the same bounds), and the few
    checks types cannot express (ids, incarnation, qualities, topic match) are the checked
    path's own functions, on sets of names. Floats need no finiteness check: JSON has no NaN or
    infinity, and msgspec refuses a literal that overflows (``1e999``) — that message takes the
    checked path. Why the digest stays the same: the readings are re-encoded and compared with
    their bytes in the payload (the last key, as every edge writes it). Equal bytes mean the
    payload's readings are canonical JSON in the order of the fields above, so
    ``orjson.dumps(orjson.loads(...))`` — :func:`content_digest` — gives those same bytes; anything
    else (whitespace, another key order, floats past 1e16, which msgspec formats otherwise) takes
    the checked path. The caller gets typed readings, not dicts: the preparer reads attributes and
    builds no dict per reading."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        env = _TELEMETRY_DECODER.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    gateway, community, readings = env.gateway, env.community, env.readings
    if parts is not None and (parts.gateway != gateway or parts.community != community
                              or parts.kind != "telemetry"):
        return None
    if not (valid_id(gateway) and valid_id(community)):
        return None
    incarnation = LEGACY_INCARNATION if env.schema == 1 else env.incarnation
    if incarnation is None or not valid_incarnation(incarnation):
        return None
    start = payload.rfind(_READINGS_KEY)
    if start < 0 or payload[-1:] != b"}":
        return None
    items_json = _ITEMS_ENCODER.encode(readings)
    if payload[start + len(_READINGS_KEY):-1] != items_json:
        return None
    ids: set[str] = set()
    for reading in readings:
        values = reading.values
        if len(values) > 1000 or (reading.q is not msgspec.UNSET and not _QUALITIES.issuperset(reading.q.values())):
            return None
        if reading.quality is not msgspec.UNSET and reading.quality not in QUALITY_BY_NAME:
            return None
        ids.update(values)
        ids.add(reading.device)
    if not _VALID_IDS.issuperset(ids) and not all(valid_id(i) for i in ids):
        return None
    return FastTelemetry(gateway, community, env.seq, env.sent_at, incarnation, readings, items_json)


_QUALITIES: Final = frozenset(QUALITY_BY_NAME)


def decode(payload: bytes, parts: TopicParts | None = None) -> Sequenced:
    """Decode and structurally validate a sequenced message; raise :class:`WireError` with a reason.

    Telemetry tries :func:`decode_telemetry` first (same result, in C); everything it
    does not vouch for is decoded and checked here.

    Checks here are the contract (shape, types, ids, sizes, finite numbers). Policy checks such as
    "is this gateway known" or "is the timestamp plausible" belong to the cloud. The result is
    typed by kind (:data:`Sequenced`): the one ``cast`` below is where the item checks of
    ``_CHECKS[kind]`` become the TypedDicts' promise. The promise is kept for every field those
    checks read; an alarm's ``labels`` and ``work_order`` are not checked here, so their reader
    (the cloud's preparer) still treats them defensively.
    """
    _require(len(payload) <= MAX_PAYLOAD_BYTES, "too_large", f"{len(payload)} bytes")
    if parts is None or parts.kind == "telemetry":
        fast = decode_telemetry(payload, parts)
        if fast is not None:
            return fast.envelope(payload)
    return decode_checked(payload, parts)


def decode_checked(payload: bytes, parts: TopicParts | None = None) -> Sequenced:
    """:func:`decode` without the fast path: every check in Python, with the exact reason."""
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
    _require(_is_int(seq) and 0 <= seq <= MAX_SEQ, "bad_seq", repr(seq)[:40])
    _require(_is_int(sent_at), "bad_time", "sent_at")
    items = doc.get(_ITEMS_KEY[kind])
    _require(isinstance(items, list), "bad_shape", f"{_ITEMS_KEY[kind]} is not a list")
    _require(len(items) <= MAX_READINGS_PER_MESSAGE, "too_large", f"{len(items)} items")
    check = _CHECKS[kind]
    for index, item in enumerate(items):
        check(item, index)
    return cast(Sequenced, Envelope(kind, gateway, community, seq, sent_at, items, payload, incarnation))


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




def _plain_values(values: dict[str, Any]) -> bool:
    """True when every metric id was seen valid before and every value is a finite number — the
    common reading, checked with two C-level passes instead of a Python loop over the metrics.

    Why this is exactly the loop's verdict for such a reading: ``sum`` succeeds only on ints,
    bools and floats (any string, None, list or dict raises ``TypeError``, an int too large for a
    float ``OverflowError``), and a sum is finite only if no term is NaN or ±inf. A sum that
    overflows to inf from finite terms, or anything else, returns False: the per-metric loop
    (:func:`_check_values`) then decides, with the same errors as before."""
    if not _VALID_IDS.issuperset(values):
        return False
    try:
        return math.isfinite(sum(values.values()))
    except (TypeError, OverflowError):
        return False


def _check_values(values: dict[str, Any], index: int) -> None:
    for metric, value in values.items():
        if metric not in _VALID_IDS:
            if not valid_id(metric):
                raise WireError("bad_id", f"reading {index} metric {metric[:40]!r}")
            if len(_VALID_IDS) < _VALID_IDS_MAX:
                _VALID_IDS.add(metric)
        if type(value) is float:
            if not math.isfinite(value):
                raise WireError("bad_value", f"reading {index} {metric} is not finite")
        elif type(value) is not int:
            _check_value(value, f"reading {index} {metric}")


def _check_reading(item: object, index: int) -> None:
    # hot path (every reading of every message): check cheaply, build messages only on failure
    if not (isinstance(item, dict) and type(item.get("ts")) is int and type(item.get("device")) is str
            and item["device"] in _VALID_IDS):
        _check_common(item, index)  # raises the exact error, or the device id is new and valid
        if len(_VALID_IDS) < _VALID_IDS_MAX:
            _VALID_IDS.add(item["device"])  # type: ignore[index]
    assert isinstance(item, dict)
    reading = item
    values = reading.get("values")
    if not (isinstance(values, dict) and len(values) <= 1000):
        raise WireError("bad_shape", f"reading {index} values")
    if not _plain_values(values):
        _check_values(values, index)  # raises the exact error of the first bad metric, or learns new ids
    quality = reading.get("quality", "good")
    if not isinstance(quality, str) or quality not in QUALITY_BY_NAME:  # a dict or list is not hashable
        raise WireError("bad_quality", f"reading {index}: {str(quality)[:40]}")
    q = reading.get("q")
    if q is not None:
        if not isinstance(q, dict):
            raise WireError("bad_shape", f"reading {index} q")
        assert isinstance(q, dict)
        for name in q.values():
            _require(isinstance(name, str) and name in QUALITY_BY_NAME, "bad_quality",
                     f"reading {index}: {str(name)[:40]}")


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
