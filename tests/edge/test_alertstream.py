"""The alert-stream part parser: parts split anywhere between reads, garbage skipped up to the next
boundary and costing nothing else, memory bounded."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from edge.alertstream import Garbage, Part, PartStream, boundary_of


def part(doc: object, *, length: bool = True) -> bytes:
    body = orjson.dumps(doc)
    head = b"--boundary\r\nContent-Type: application/json\r\n"
    if length:
        head += f"Content-Length: {len(body)}\r\n".encode()
    return head + b"\r\n" + body + b"\r\n"


STREAM = b"".join([
    part({"n": 1}),
    b"\x00\xffstray bytes\r\n",
    b"--boundary\r\nnot a header\r\n\r\n{}\r\n",
    part({"n": 2}, length=False),
    b"--boundary\r\nContent-Type: application/json\r\nContent-Length: lots\r\n\r\n{}\r\n",
    b"--boundary\r\nContent-Type: application/json\r\n\r\n{\"n\": broken\r\n",
    part({"n": 3}),
    b"--boundary\r\n",   # the start of a fourth part: waits for more bytes
])


def run(chunks: list[bytes]) -> tuple[list[Part], list[Garbage]]:
    parser = PartStream("boundary")
    parts: list[Part] = []
    garbage: list[Garbage] = []
    for chunk in chunks:
        for item in parser.feed(chunk):
            (parts if isinstance(item, Part) else garbage).append(item)   # type: ignore[arg-type]
    return parts, garbage


def test_parts_and_garbage_in_one_read() -> None:
    parts, garbage = run([STREAM])
    bodies = [p.body for p in parts]
    # the broken-JSON part is a well-framed part: the adapter rejects its body, the parser passes it
    assert [orjson.loads(b)["n"] for b in bodies if b.startswith(b'{"n":') and b"broken" not in b] == [1, 2, 3]
    assert any(b"broken" in b for b in bodies)
    assert {g.reason.split(" ")[0] for g in garbage} >= {"bytes", "bad"}
    assert len(garbage) == 3


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=12))
def test_any_split_gives_the_same_parts(cuts: list[int]) -> None:
    """Where garbage is cut may depend on the reads (it is skipped in pieces); the parts may not."""
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    parts, garbage = run(chunks)
    assert parts == run([STREAM])[0]
    assert garbage


def test_memory_is_bounded() -> None:
    parser = PartStream("boundary", max_part_bytes=1000, max_header_bytes=100)
    items = list(parser.feed(b"x" * 5000))
    assert items
    assert all(isinstance(i, Garbage) for i in items)
    items = list(parser.feed(b"--boundary\r\n" + b"H" * 500))
    assert any(isinstance(i, Garbage) and "headers too long" in i.reason for i in items)
    assert [p.body for p in parser.feed(b"\r\n" + part({"n": 9})) if isinstance(p, Part)] == [b'{"n":9}']


def test_boundary_of() -> None:
    assert boundary_of('multipart/mixed; boundary="boundary"') == "boundary"
    assert boundary_of("multipart/mixed;boundary=MIME_boundary") == "MIME_boundary"
    assert boundary_of("application/json") is None
