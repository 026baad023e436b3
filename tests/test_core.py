"""Pure logic of the shared core: config errors with lines, the wire contract, backoff."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from guanjia.core import wire
from guanjia.core.backoff import Backoff
from guanjia.core.config import load_model
from guanjia.core.errors import ConfigError, WireError
from guanjia.core.settings import MqttUrl, Settings


class _Point(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    address: int


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    points: list[_Point]


def test_config_error_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("id: x\npoints:\n  - name: a\n    address: 1\n  - name: b\n    adress: 2\n")
    with pytest.raises(ConfigError) as exc:
        load_model(_Doc, path)
    lines = [str(i) for i in exc.value.issues]
    assert f"{path}:6: points.1.adress: unknown field (check the spelling)" in lines
    assert f"{path}:5: points.1.address: field required" in lines


def test_config_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\npoints: [\n  {name: a\n")
    with pytest.raises(ConfigError) as exc:
        load_model(_Doc, path)
    assert exc.value.issues[0].line is not None
    assert "YAML syntax" in exc.value.issues[0].message


def test_config_empty_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text("")
    with pytest.raises(ConfigError, match="file is empty"):
        load_model(_Doc, tmp_path / "e.yaml")
    with pytest.raises(ConfigError, match="cannot read file"):
        load_model(_Doc, tmp_path / "nope.yaml")


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


@given(readings, st.integers(0, 2**62))
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


def test_backoff_is_capped_and_jittered() -> None:
    b = Backoff(initial=1, cap=8, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(10)]
    assert all(0.5 <= d <= 8 for d in delays)
    assert max(delays[5:]) > 4
    b.reset()
    assert b.next_delay() <= 1


def test_settings_refuse_missing_secret_outside_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUANJIA_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="GUANJIA_SECRET_KEY"):
        Settings(mode="production")
    assert Settings(mode="demo").secret_key


def test_mqtt_url() -> None:
    u = MqttUrl.parse("mqtts://gw%2F1:p%40ss@broker.example:8884")
    assert (u.username, u.password, u.host, u.port, u.tls) == ("gw/1", "p@ss", "broker.example", 8884, True)
    assert MqttUrl.parse(u.url()) == u
