"""The wire contract (guanjia.core.wire): every message kind encodes and decodes back to itself,
the bytes of the downward messages are pinned (an edge in the field parses them), and decoding
never crashes on garbage."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, get_args

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guanjia.core import wire
from guanjia.core.errors import WireError

INCARNATION = "9f86d081884c7d65"

readings = st.lists(
    st.fixed_dictionaries(
        {
            "device": st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z"),
            "ts": st.integers(0, 2**42),
            "values": st.dictionaries(
                st.from_regex(r"\A[a-z][a-z0-9_]{0,20}\Z"),
                st.one_of(st.none(), st.booleans(), st.integers(-(2**31), 2**31),
                          st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)),
                max_size=5,
            ),
        }
    ),
    max_size=20,
)


@given(readings, st.integers(0, wire.MAX_SEQ))
def test_wire_roundtrip(items: list[dict[str, object]], seq: int) -> None:
    payload = wire.encode("telemetry", gateway="gw-1", community="c1", seq=seq, sent_at=1, items=items)
    env = wire.decode(payload, wire.parse_topic(wire.topic("c1", "gw-1", "telemetry")))
    assert env.seq == seq
    assert env.items == items


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_wire_decode_never_crashes_on_garbage(data: bytes) -> None:
    with contextlib.suppress(WireError):
        wire.decode(data)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"schema": 3}, "bad_schema"),
        ({"schema": True}, "bad_schema"),
        ({"schema": 2, "kind": "telemetry", "gateway": "g", "community": "c", "seq": 1, "sent_at": 0,
          "readings": []}, "bad_incarnation"),
        ({"schema": 2, "kind": "telemetry", "gateway": "g", "community": "c", "incarnation": "not/hex", "seq": 1,
          "sent_at": 0, "readings": []}, "bad_incarnation"),
        ({"schema": 1, "kind": "telemetry", "gateway": "g/1", "community": "c"}, "bad_id"),
        ({"schema": 1, "kind": "telemetry", "gateway": "g", "community": "c", "seq": -1, "sent_at": 0,
          "readings": []}, "bad_seq"),
        ({"schema": 1, "kind": "telemetry", "gateway": "g", "community": "c", "seq": 1, "sent_at": 0,
          "readings": [{"device": "d", "ts": 1, "values": {"v": "x" * 1000}}]}, "bad_value"),
        ({"schema": 1, "kind": "telemetry", "gateway": "g", "community": "c", "seq": 1, "sent_at": 0,
          "readings": [{"device": "d'; DROP TABLE x;--", "ts": 1, "values": {}}]}, "bad_id"),
        ({"schema": 1, "kind": "alarms", "gateway": "g", "community": "c", "seq": 1, "sent_at": 0,
          "alarms": [{"device": "d", "ts": 1, "rule": "r", "state": "maybe"}]}, "bad_shape"),
        # an unhashable quality is a quality error, not a TypeError caught as a generic bad_shape
        ({"schema": 1, "kind": "telemetry", "gateway": "g", "community": "c", "seq": 1, "sent_at": 0,
          "readings": [{"device": "d", "ts": 1, "values": {"v": 1}, "quality": {"v": "offline"}}]}, "bad_quality"),
        ({"schema": 1, "kind": "telemetry", "gateway": "g", "community": "c", "seq": 1, "sent_at": 0,
          "readings": [{"device": "d", "ts": 1, "values": {"v": 1}, "q": {"v": ["offline"]}}]}, "bad_quality"),
    ],
)
def test_wire_rejects_with_reason(doc: dict[str, object], reason: str) -> None:
    with pytest.raises(WireError) as exc:
        wire.decode(orjson.dumps(doc))
    assert exc.value.reason == reason


def test_wire_incarnation_both_schemas() -> None:
    """Schema 2 carries the outbox incarnation; schema 1 (an older edge) is still accepted as "legacy",
    and a stray incarnation field in a schema 1 message is not trusted."""
    items = [{"device": "d", "ts": 1, "values": {"v": 1.5}}]
    new = wire.decode(wire.encode("telemetry", gateway="g", community="c", seq=1, sent_at=0, items=items,
                                  incarnation="0123456789abcdef"))
    assert (new.incarnation, orjson.loads(new.raw)["schema"]) == ("0123456789abcdef", 2)
    old = wire.decode(wire.encode("telemetry", gateway="g", community="c", seq=1, sent_at=0, items=items))
    assert (old.incarnation, orjson.loads(old.raw)["schema"]) == (wire.LEGACY_INCARNATION, 1)
    upgraded = wire.decode(wire.encode("telemetry", gateway="g", community="c", seq=1, sent_at=0, items=items,
                                       incarnation=wire.LEGACY_INCARNATION))  # an older agent's outbox file
    assert (upgraded.incarnation, orjson.loads(upgraded.raw)["schema"]) == ("legacy", 2)
    stray = orjson.loads(old.raw) | {"incarnation": "0123456789abcdef"}
    assert wire.decode(orjson.dumps(stray)).incarnation == wire.LEGACY_INCARNATION
    # the content digest ignores sent_at (a resend) and sees any change of the data
    resent = wire.decode(wire.encode("telemetry", gateway="g", community="c", seq=1, sent_at=99, items=items))
    assert wire.content_digest(resent.items) == wire.content_digest(old.items)
    other = [{"device": "d", "ts": 1, "values": {"v": 1.6}}]
    assert wire.content_digest(other) != wire.content_digest(old.items)


def test_wire_rejects_nan_and_topic_mismatch() -> None:
    payload = b'{"schema":1,"kind":"telemetry","gateway":"g","community":"c","seq":1,"sent_at":0,' \
              b'"readings":[{"device":"d","ts":1,"values":{"v":NaN}}]}'
    with pytest.raises(WireError):
        wire.decode(payload)
    ok = wire.encode("telemetry", gateway="g", community="c", seq=1, sent_at=0, items=[])
    with pytest.raises(WireError) as exc:
        wire.decode(ok, wire.parse_topic("guanjia/v1/c/other/telemetry"))
    assert exc.value.reason == "topic_mismatch"


# --------------------------------------------------------------------------- topics and envelopes


@pytest.mark.parametrize("kind", get_args(wire.Kind))
def test_topic_roundtrip_for_every_kind(kind: wire.Kind) -> None:
    parts = wire.parse_topic(wire.topic("demo", "gw-1", kind))
    assert (parts.community, parts.gateway, parts.kind) == ("demo", "gw-1", kind)


def test_sequenced_kinds_are_the_kinds_with_items() -> None:
    assert set(wire.SEQUENCED_KINDS) == set(get_args(wire.SequencedKind))
    assert set(wire.SEQUENCED_KINDS) <= set(wire.UPWARD_KINDS)


alarms = st.lists(
    st.fixed_dictionaries(
        {"device": st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z"), "rule": st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z"),
         "state": st.sampled_from(["raise", "clear"]), "ts": st.integers(0, 2**42)},
        optional={"severity": st.sampled_from(["info", "warning", "critical"]), "message": st.text(max_size=40),
                  "value": st.one_of(st.none(), st.integers(-1000, 1000), st.floats(allow_nan=False,
                                                                                   allow_infinity=False)),
                  "work_order": st.booleans(),
                  "labels": st.dictionaries(st.from_regex(r"\A[a-z]{1,8}\Z"), st.text(max_size=8), max_size=3)}),
    max_size=10,
)
events = st.lists(
    st.fixed_dictionaries(
        {"device": st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z"), "type": st.from_regex(r"\A[a-z][a-z_]{0,20}\Z"),
         "ts": st.integers(0, 2**42)},
        optional={"data": st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
                                         max_size=3)}),
    max_size=10,
)
incarnations = st.one_of(st.none(), st.just(wire.LEGACY_INCARNATION), st.from_regex(r"\A[0-9a-f]{16}\Z"))


@given(st.one_of(st.tuples(st.just("telemetry"), readings), st.tuples(st.just("alarms"), alarms),
                 st.tuples(st.just("events"), events)),
       st.integers(0, wire.MAX_SEQ), st.integers(0, 2**42), incarnations)
def test_every_sequenced_kind_roundtrips(kind_items: tuple[wire.SequencedKind, list[dict[str, Any]]], seq: int,
                                         sent_at: int, incarnation: str | None) -> None:
    kind, items = kind_items
    payload = wire.encode(kind, gateway="gw-1", community="c1", seq=seq, sent_at=sent_at, items=items,
                          incarnation=incarnation)
    env = wire.decode(payload, wire.parse_topic(wire.topic("c1", "gw-1", kind)))
    assert (env.kind, env.gateway, env.community, env.seq, env.sent_at) == (kind, "gw-1", "c1", seq, sent_at)
    assert env.items == items
    assert env.raw == payload
    assert env.incarnation == (incarnation or wire.LEGACY_INCARNATION)
    # the edge's spliced encoding (items stored pre-encoded in the outbox) gives the same bytes
    assert wire.encode_spliced(kind, gateway="gw-1", community="c1", seq=seq, sent_at=sent_at,
                               body=orjson.dumps(items), incarnation=incarnation) == payload


def test_envelope_kind_narrows_items() -> None:
    """The typed union: after checking ``kind`` the items are that kind's TypedDict (mypy checks this file)."""
    env = wire.decode(wire.encode("alarms", gateway="g", community="c", seq=1, sent_at=0, incarnation=INCARNATION,
                                  items=[{"device": "d", "rule": "r", "state": "raise", "ts": 5}]))
    assert env.kind == "alarms"
    alarm: wire.AlarmDict = env.items[0]
    assert (alarm["rule"], alarm["state"], alarm.get("severity", "warning")) == ("r", "raise", "warning")


def test_seq_bound_is_bigint() -> None:
    def payload(seq: int) -> bytes:
        return wire.encode("events", gateway="g", community="c", seq=seq, sent_at=0, items=[],
                           incarnation=INCARNATION)

    assert wire.MAX_SEQ == 2**63 - 1  # PostgreSQL bigint and SQLite INTEGER: signed 64-bit
    assert wire.decode(payload(wire.MAX_SEQ)).seq == wire.MAX_SEQ
    with pytest.raises(WireError) as exc:
        wire.decode(payload(wire.MAX_SEQ + 1))
    assert exc.value.reason == "bad_seq"


def test_status_payload() -> None:
    payload = wire.encode_status("gw-1", "demo", "online", 7, {"devices_online": 58})
    assert orjson.loads(payload) == {"schema": 2, "kind": "status", "gateway": "gw-1", "community": "demo",
                                     "state": "online", "ts": 7, "health": {"devices_online": 58}}


# --------------------------------------------------------------------------- stored confirmations


def test_stored_bytes_are_pinned() -> None:
    assert wire.encode_stored(INCARNATION, [3, 1, 2, 9], 42) == [
        b'{"schema":2,"kind":"stored","incarnation":"9f86d081884c7d65","seqs":[[1,3],[9,9]],"ts":42}']


@given(st.sets(st.integers(1, wire.MAX_SEQ), max_size=50) | st.sets(st.integers(1, 3000), max_size=2500))
def test_stored_roundtrip(seqs: set[int]) -> None:
    payloads = wire.encode_stored(INCARNATION, seqs, 1)
    got: set[int] = set()
    ranges: list[tuple[int, int]] = []
    for payload in payloads:
        parsed = wire.parse_stored(payload, INCARNATION)
        assert parsed is not None
        assert len(parsed) <= wire.MAX_RANGES_PER_MESSAGE
        ranges += parsed
    for first, last in ranges:
        assert first <= last
        if last - first < 10_000:
            got.update(range(first, last + 1))
        else:
            got.update(s for s in seqs if first <= s <= last)
    assert got == seqs
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ranges))  # merged and sorted
    assert len(payloads) == -(-len(wire.merge_seqs(seqs)) // wire.MAX_RANGES_PER_MESSAGE)


def test_stored_of_another_incarnation_or_older_cloud() -> None:
    def doc(**extra: object) -> bytes:
        return orjson.dumps({"schema": 2, "kind": "stored", "seqs": [[1, 3]], "ts": 0, **extra})

    assert wire.parse_stored(doc(incarnation=INCARNATION), INCARNATION) == [(1, 3)]
    assert wire.parse_stored(doc(incarnation="00000000000000b2"), INCARNATION) == []
    assert wire.parse_stored(doc(), INCARNATION) == [(1, 3)]  # a cloud older than incarnations
    assert wire.parse_stored(doc(schema=1), wire.LEGACY_INCARNATION) == [(1, 3)]


@pytest.mark.parametrize("payload", [b'{"kind": "cmd", "id": "stored"}', b'{"id": "c-1", "device": "d"}',
                                     b'"stored"', b'not json "stored"', b"[]"])
def test_a_command_is_no_confirmation(payload: bytes) -> None:
    assert wire.parse_stored(payload, INCARNATION) is None


def test_malformed_ranges_are_skipped() -> None:
    seqs = [[1, 2], [5, 4], [0, 1], [3], [1.5, 2], [True, 2], "x", [7, wire.MAX_SEQ], [8, wire.MAX_SEQ + 1]]
    payload = orjson.dumps({"kind": "stored", "seqs": seqs})
    assert wire.parse_stored(payload, INCARNATION) == [(1, 2), (7, wire.MAX_SEQ)]
    assert wire.parse_stored(b'{"kind": "stored", "seqs": {}}', INCARNATION) == []
    many = orjson.dumps({"kind": "stored", "seqs": [[n, n] for n in range(1, wire.MAX_STORED_RANGES + 10)]})
    assert len(wire.parse_stored(many, INCARNATION) or []) == wire.MAX_STORED_RANGES


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"schema": 2, "incarnation": "9f86d081884c7d65", "seq": 8, "kind": 5}', (INCARNATION, 8)),
        (b'{"schema": 1, "incarnation": "9f86d081884c7d65", "seq": 8}', (wire.LEGACY_INCARNATION, 8)),
        (b'{"schema": 2, "incarnation": "NOT-HEX", "seq": 8}', (wire.LEGACY_INCARNATION, 8)),
        (b'{"seq": 0}', (wire.LEGACY_INCARNATION, None)),
        (b'{"seq": true}', (wire.LEGACY_INCARNATION, None)),
        (b'{"seq": 9223372036854775808}', (wire.LEGACY_INCARNATION, None)),
        (b"[8]", (wire.LEGACY_INCARNATION, None)),
        (b"{not json", (wire.LEGACY_INCARNATION, None)),
    ],
)
def test_peek_sequence_of_undecodable_batches(payload: bytes, expected: tuple[str, int | None]) -> None:
    assert wire.peek_sequence(payload) == expected


# --------------------------------------------------------------------------- commands and replies

scalars = st.one_of(st.booleans(), st.integers(-(2**31), 2**31), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=20))


@given(st.builds(wire.WriteCommand, st.text(min_size=1, max_size=20), st.text(max_size=20), st.text(max_size=20),
                 scalars, st.none() | st.integers(1, 2**42)),
       st.integers(0, 2**42), st.none() | st.text(max_size=10), st.none() | st.text(max_size=10))
def test_command_roundtrip(command: wire.WriteCommand, ts: int, issued_by: str | None, reply_to: str | None) -> None:
    payload = wire.encode_command(command, ts=ts, issued_by=issued_by, reply_to=reply_to)
    doc = wire.decode_command(payload)
    assert wire.parse_command(doc) == command
    assert (doc["schema"], doc["kind"], doc["type"], doc["ts"]) == (wire.SCHEMA_VERSION, "cmd", "write", ts)
    assert (doc.get("issued_by"), doc.get("reply_to")) == (issued_by, reply_to)
    assert wire.parse_stored(payload, INCARNATION) is None  # never mistaken for a confirmation


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"device": "d", "point": "p", "value": 1}, "bad_command"),
        ({"id": "", "device": "d", "point": "p", "value": 1}, "bad_command"),
        ({"id": "c", "type": "read", "device": "d", "point": "p", "value": 1}, "unsupported"),
        ({"id": "c", "device": 5, "point": "p", "value": 1}, "bad_command"),
        ({"id": "c", "device": "d", "value": 1}, "bad_command"),
        ({"id": "c", "device": "d", "point": "p"}, "bad_value"),
        ({"id": "c", "device": "d", "point": "p", "value": [1]}, "bad_value"),
        ({"id": "c", "device": "d", "point": "p", "value": {"a": 1}}, "bad_value"),
        ({"id": "c", "device": "d", "point": "p", "value": 1, "expires": "soon"}, "bad_command"),
        ({"id": "c", "device": "d", "point": "p", "value": 1, "expires": 1.5}, "bad_command"),
        ({"id": "c", "device": "d", "point": "p", "value": 1, "expires": 0}, "bad_command"),
    ],
)
def test_command_refused_with_reason(doc: dict[str, Any], reason: str) -> None:
    with pytest.raises(WireError) as exc:
        wire.parse_command(wire.decode_command(orjson.dumps(doc)))
    assert exc.value.reason == reason


@pytest.mark.parametrize("payload", [b"", b"[1]", b'"x"', b"{bad"])
def test_command_not_an_object(payload: bytes) -> None:
    with pytest.raises(WireError) as exc:
        wire.decode_command(payload)
    assert (exc.value.reason, exc.value.detail) == ("bad_command", "payload is not a JSON object")


def test_reply_bytes_are_pinned_and_echo_the_command() -> None:
    command = {"id": "c-1", "device": "b1-pump-1", "point": "pressure_setpoint", "value": 12, "reply_to": "r/1"}
    reply = wire.encode_reply(command, gateway="gw-1", community="demo", ok=False, reason="out_of_range",
                              detail="pressure_setpoint: 12 is above the maximum 10", ts=1700000000000)
    assert reply == (b'{"schema":2,"kind":"cmd/reply","gateway":"gw-1","community":"demo","id":"c-1","ok":false,'
                     b'"reason":"out_of_range","detail":"pressure_setpoint: 12 is above the maximum 10",'
                     b'"device":"b1-pump-1","point":"pressure_setpoint","value":12,"ts":1700000000000,'
                     b'"reply_to":"r/1"}')
    bare = orjson.loads(wire.encode_reply({}, gateway="g", community="c", ok=False, reason="bad_command",
                                          detail="payload is not a JSON object", ts=0))
    assert "reply_to" not in bare
    assert (bare["id"], bare["device"], bare["point"], bare["value"]) == (None, None, None, None)
    ok = orjson.loads(wire.encode_reply(command, gateway="g", community="c", ok=True, reason=None, detail="", ts=0))
    assert (ok["ok"], ok["reason"], ok["detail"]) == (True, None, "")


def test_the_cloud_reads_replies_it_can_trust() -> None:
    command = {"id": "c-1", "device": "b1-pump-1", "point": "pressure_setpoint", "value": 12}
    refused = wire.encode_reply(command, gateway="g", community="c", ok=False, reason="out_of_range",
                                detail="too high", ts=0)
    assert wire.parse_reply(refused) == wire.CommandReply("c-1", False, "out_of_range", "too high")
    done = wire.encode_reply(command, gateway="g", community="c", ok=True, reason=None, detail="", ts=0)
    assert wire.parse_reply(done) == wire.CommandReply("c-1", True, None, "")
    assert wire.parse_reply(b'{"id": "x", "ok": false}').reason == "refused"  # a refusal always has a reason
    for bad in (b"", b"[]", b'{"ok": true}', b'{"id": "x", "ok": 1}', b'{"id": "x", "ok": false, "reason": 5}',
                b'{"kind": "cmd", "id": "x", "ok": true}'):
        with pytest.raises(WireError) as exc:
            wire.parse_reply(bad)
        assert exc.value.reason == "bad_reply"


@pytest.mark.parametrize(("payload", "state"), [
    (wire.encode_status("g", "c", "online", 0, {}), "online"),
    (wire.encode_status("g", "c", "offline", 0, {"x": 1}), "offline"),
    (b'{"state": "sleepy"}', None), (b"[]", None), (b"{bad", None),
])
def test_status_state(payload: bytes, state: str | None) -> None:
    assert wire.status_state(payload) == state


def test_stored_behind_hint_is_optional() -> None:
    plain = wire.encode_stored(INCARNATION, [1, 2], 7)
    hinted = wire.encode_stored(INCARNATION, [1, 2], 7, behind=True)
    assert b"behind" not in plain[0]
    assert orjson.loads(hinted[0])["behind"] is True
    assert wire.parse_stored(hinted[0], INCARNATION) == [(1, 2)]  # an older edge reads it as before
    assert (wire.stored_behind(plain[0]), wire.stored_behind(hinted[0])) == (False, True)
    assert not wire.stored_behind(b'{"behind": "yes"}')
    assert not wire.stored_behind(b'{"behind": tru')


@pytest.mark.parametrize(("values", "reason"), [
    ({"m0": 1e308, "m1": 1e308}, None),  # the fast path's sum overflows: the per-metric loop decides (valid)
    ({"m0": 1.5, "m1": 2**63 - 1, "m2": True, "m3": None, "m4": "on"}, None),
    ({"m0": 1.5, "m1": [1]}, "bad_value"),
    ({"m0": 1.5, "bad/metric": 2.0}, "bad_id"),
    ({"m0": "x" * 300}, "bad_value"),
])
def test_reading_values_fast_path_gives_the_loops_verdict(values: dict[str, Any], reason: str | None) -> None:
    payload = wire.encode("telemetry", gateway="g", community="c", seq=1, sent_at=1,
                          items=[{"device": "d0", "ts": 1, "values": values}], incarnation=INCARNATION)
    if reason is None:
        assert orjson.loads(payload)["readings"][0]["values"] == values
        assert len(wire.decode(payload).items) == 1
    else:
        with pytest.raises(WireError) as caught:
            wire.decode(payload)
        assert caught.value.reason == reason


def _outcome(decoder: Any, payload: bytes, parts: wire.TopicParts | None) -> tuple[Any, ...]:
    """What a decoder makes of a payload: the reason it refuses it, or everything it returns."""
    try:
        env = decoder(payload, parts)
    except WireError as exc:
        return ("refused", exc.reason)
    return (env.kind, env.gateway, env.community, env.seq, env.sent_at, env.incarnation, env.items, env.digest)


_FAST_PARTS = wire.TopicParts("c1", "gw1", "telemetry")
_FAST_READING: dict[str, Any] = {"device": "d1", "ts": 1_700_000_000_000, "values": {"a": 1.5, "b": 2, "c": True}}


def _fast_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": 2, "kind": "telemetry", "gateway": "gw1", "community": "c1",
                           "incarnation": "0123456789abcdef", "seq": 7, "sent_at": 1_700_000_000_000,
                           "readings": [dict(_FAST_READING)]}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not _DROP}


_DROP = object()


@pytest.mark.parametrize("payload", [
    orjson.dumps(_fast_doc()),
    orjson.dumps(_fast_doc(schema=1, incarnation=_DROP)),
    orjson.dumps(_fast_doc(schema=1, incarnation=5)),  # schema 1 ignores the field (the checked path reads it)
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "quality": "uncertain"}])),
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "quality": "nope"}])),
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "q": {"a": "bad"}}])),
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "q": {"a": "nope"}}])),
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "q": None}])),
    orjson.dumps(_fast_doc(readings=[{"ts": 1, "device": "d1", "values": {"a": 1}}])),  # another key order
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "extra": 1}])),  # an unknown key is hashed too
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "values": {"a": None, "b": "text"}}])),
    orjson.dumps(_fast_doc()).replace(b"1.5", str(2**70).encode()),  # an int past 64 bits
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "values": {"a": 1e300, "b": 2.5e16}}])),
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "values": {"bad/id": 1}}])),
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "device": "bad device"}])),
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "ts": True}])),
    orjson.dumps(_fast_doc(readings=[{**_FAST_READING, "values": {f"m{i}": i for i in range(1001)}}])),
    orjson.dumps(_fast_doc(readings=[])),
    orjson.dumps(_fast_doc(seq=-1)),
    orjson.dumps(_fast_doc(seq=2**63)),
    orjson.dumps(_fast_doc(seq=True)),
    orjson.dumps(_fast_doc(sent_at=1.5)),
    orjson.dumps(_fast_doc(schema=3)),
    orjson.dumps(_fast_doc(incarnation="ABC")),
    orjson.dumps(_fast_doc(incarnation=_DROP)),
    orjson.dumps(_fast_doc(gateway="other")),
    orjson.dumps(_fast_doc(community="bad id")),
    orjson.dumps(_fast_doc(kind="alarms")),
    orjson.dumps(_fast_doc(extra={"readings": [1]})),
    orjson.dumps(_fast_doc()).replace(b'"seq":7', b'"seq":7,"seq":8'),  # duplicate keys: the last wins in both
    orjson.dumps(_fast_doc()).replace(b'"values":{', b'"values":{"a":0,'),  # a duplicate metric
    orjson.dumps(_fast_doc()).replace(b',"readings":', b', "readings": '),
    orjson.dumps(_fast_doc()) + b" ",
    orjson.dumps(_fast_doc()).replace(b"1.5", b"1e999"),
    orjson.dumps(_fast_doc()).replace(b"1.5", b"NaN"),
    orjson.dumps(_fast_doc()).replace(b"1.5", b"1.50"),
    orjson.dumps(_fast_doc())[:-1] + b',"trailing":1}',
], ids=lambda p: p.decode(errors="replace")[:80])
def test_fast_telemetry_path_gives_the_checked_paths_verdict(payload: bytes) -> None:
    """Issue 21: :func:`wire.decode` takes the msgspec path first; whatever it accepts it returns
    exactly as the checked path would (items, digest — the dedupe key — and all), and whatever
    it declines the checked path refuses with its own reason."""
    for parts in (_FAST_PARTS, None):
        assert _outcome(wire.decode, payload, parts) == _outcome(wire.decode_checked, payload, parts)


def test_fast_telemetry_path_takes_what_edges_send() -> None:
    items = [{"device": f"d{i}", "ts": 1_700_000_000_000 + i, "values": {"t": 20.5 + i, "on": True, "n": i},
              "quality": "good"} for i in range(50)]
    payload = wire.encode("telemetry", gateway="gw1", community="c1", seq=3, sent_at=1, items=items,
                          incarnation="0123456789abcdef")
    fast = wire.decode_telemetry(payload, _FAST_PARTS)
    assert fast is not None
    assert fast.digest == wire.content_digest(items)
    assert fast.items() == items
    assert fast.envelope(payload).items_json == orjson.dumps(items)
    assert wire.decode_telemetry(orjson.dumps(orjson.loads(payload), option=orjson.OPT_INDENT_2), _FAST_PARTS) is None


@given(items=st.lists(st.fixed_dictionaries({
    "device": st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True), "ts": st.integers(-(2**63), 2**63 - 1),
    "values": st.dictionaries(st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True),
                              st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
                              | st.booleans() | st.none(), max_size=6)}), max_size=6))
@settings(max_examples=200, deadline=None)
def test_fast_telemetry_path_agrees_on_any_readings(items: list[dict[str, Any]]) -> None:
    try:
        payload = wire.encode("telemetry", gateway="gw1", community="c1", seq=1, sent_at=1, items=items,
                              incarnation="0123456789abcdef")
    except TypeError:  # ints past 64 bits: orjson will not write them
        return
    assert _outcome(wire.decode, payload, _FAST_PARTS) == _outcome(wire.decode_checked, payload, _FAST_PARTS)
