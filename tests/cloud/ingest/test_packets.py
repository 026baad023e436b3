"""The MQTT packet codec of the ingest receive path (cloud/ingest/packets.py): any split of a
stream gives the same packets; malformed or oversized input is a PacketError, never a crash."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.ingest import packets
from cloud.ingest.packets import PacketError, Parser

topics = st.text(st.characters(codec="utf-8", exclude_characters="\x00#+"), min_size=1, max_size=40)


def _props(n: int) -> bytes:
    """A PUBLISH property block of ``n`` bytes of user property padding (content is skipped)."""
    if n == 0:
        return b"\x00"
    body = b"\x26" + (0).to_bytes(2, "big") + (n - 5).to_bytes(2, "big") + b"x" * (n - 5) if n >= 5 else b""
    return packets.varint(len(body)) + body


def _server_publish(topic: str, payload: bytes, pid: int, qos: int, props: int) -> bytes:
    raw = topic.encode()
    head = len(raw).to_bytes(2, "big") + raw + (pid.to_bytes(2, "big") if qos else b"")
    body = head + _props(props) + payload
    return bytes((0x30 | qos << 1,)) + packets.varint(len(body)) + body


publish_packets = st.builds(
    lambda t, p, pid, q, pr: (("pub", t, p, pid if q else 0, q), _server_publish(t, p, pid, q, pr)),
    topics, st.binary(max_size=300), st.integers(1, 65_535), st.sampled_from([0, 1]),
    st.sampled_from([0, 5, 200]))
control_packets = st.one_of(
    st.integers(1, 65_535).map(lambda pid: (("ctl", packets.PUBACK, pid), packets.pubacks([pid]))),
    st.integers(1, 65_535).map(lambda pid: (("ctl", packets.SUBACK, pid),
                                            bytes((0x90, 5)) + pid.to_bytes(2, "big") + b"\x00\x01\x01")),
    st.just((("ctl", packets.PINGRESP, 0), b"\xd0\x00")),
    st.just((("ctl", packets.CONNACK, 1), b"\x20\x06\x01\x00\x03\x21\x00\x14")),
)
streams = st.lists(st.one_of(publish_packets, control_packets), min_size=1, max_size=30)


def _normal(publishes: list[packets.Publish], controls: list[packets.Control]) -> list[tuple[object, ...]]:
    return [("pub", t, p, pid, q) for t, p, pid, q in publishes] + [("ctl", c[0], c[1]) for c in controls]


@settings(max_examples=300, deadline=None)
@given(streams, st.lists(st.integers(0, 10_000), max_size=20))
def test_any_split_of_a_stream_gives_the_same_packets(items: list[tuple[tuple[object, ...], bytes]],
                                                      cuts: list[int]) -> None:
    stream = b"".join(raw for _, raw in items)
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    parser = Parser()
    got_pub: list[tuple[object, ...]] = []
    got_ctl: list[tuple[object, ...]] = []
    for a, b in itertools.pairwise(bounds):
        pubs, ctls = parser.feed(stream[a:b])
        got_pub += _normal(pubs, [])
        got_ctl += _normal([], ctls)
    assert got_pub == [e for e, _ in items if e[0] == "pub"]
    assert got_ctl == [e for e, _ in items if e[0] == "ctl"]
    assert parser.feed(b"") == ([], [])  # nothing left over


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.integers(1, 50))
def test_arbitrary_bytes_are_packets_or_a_packet_error(data: bytes, chunk: int) -> None:
    parser = Parser(max_packet=1_000)
    try:
        for i in range(0, len(data), chunk):
            parser.feed(data[i:i + chunk])
    except PacketError:
        pass


@pytest.mark.parametrize(("raw", "why"), [
    (b"\x30\xff\xff\xff\xff\x01", "four bytes"),
    (b"\x32\x80\x80\x80\x01", "maximum"),  # 2 MiB over a 1 MiB limit, refused before it arrives
    (b"\x36\x05\x00\x01a\x00\x01", "QoS 3"),
    (b"\x30\x04\x00\x09ab", "overruns"),
    (b"\x32\x03\x00\x01a", "overruns"),
    (b"\x30\x03\x00\x00\x00", "empty topic"),
    (b"\x50\x02\x00\x01", "unexpected packet type 5"),  # PUBREC: no QoS 2 here
    (b"\xf0\x00", "unexpected packet type 15"),  # AUTH
    (b"\x20\x01\x00", "CONNACK too short"),
])
def test_malformed_packets_are_refused_clearly(raw: bytes, why: str) -> None:
    with pytest.raises(PacketError, match=why):
        Parser(max_packet=1 << 20).feed(raw)


def test_a_topic_that_is_not_utf8_is_delivered_for_a_dead_letter() -> None:
    raw = b"guanjia/v1/\xff/gw/telemetry"
    body = len(raw).to_bytes(2, "big") + raw + b"\x00\x07\x00{}"
    pubs, _ = Parser().feed(bytes((0x32, len(body))) + body)
    assert pubs[0][0].startswith("guanjia/v1/\ufffd/")
    assert pubs[0][1:] == (b"{}", 7, 1)


def test_client_packets_encode_what_the_parser_reads() -> None:
    topic = packets.topic_prefix("guanjia/v1/c/g/cmd")
    pubs, _ = Parser().feed(packets.publish(topic, b"x" * 300, 42) + packets.as_dup(packets.publish(topic, b"y", 43)))
    assert pubs == [("guanjia/v1/c/g/cmd", b"x" * 300, 42, 1), ("guanjia/v1/c/g/cmd", b"y", 43, 1)]
    assert packets.pubacks([1, 65_535]) == b"\x40\x02\x00\x01\x40\x02\xff\xff"
    connect = packets.connect("id", keepalive=30, clean_start=False, session_expiry=60, receive_maximum=128,
                              username="u", password="p")
    assert connect[0] == 0x10
    assert connect.endswith(b"\x00\x02id\x00\x01u\x00\x01p")
    assert packets.disconnect(0) == b"\xe0\x07\x00\x05\x11\x00\x00\x00\x00"
    assert packets.connack_properties(b"\x21\x00\x14\x27\x00\x01\x00\x00\x12\x00\x02ab") == {0x21: 20, 0x27: 65_536}


def test_a_retained_publish_with_message_expiry_is_read_back() -> None:
    """The ingest's ``behind`` status: RETAIN set, one Message Expiry Interval property (0x02)."""
    topic = packets.topic_prefix("guanjia/v1/_cloud/ingest/w-0/behind")
    packet = packets.publish(topic, b"{}", 9, retain=True, expiry_s=20)
    assert packet[0] == 0x33  # PUBLISH, QoS 1, RETAIN
    assert b"\x05\x02\x00\x00\x00\x14{}" in packet
    pubs, _ = Parser().feed(packet + packets.publish(topic, b"", 10, retain=True))
    name = "guanjia/v1/_cloud/ingest/w-0/behind"
    assert pubs == [(name, b"{}", 9, 1), (name, b"", 10, 1)]
