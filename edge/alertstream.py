"""A streaming parser of never-ending ``multipart/mixed`` responses (ISAPI alert streams).

Why hand-written: the kept multipart parser (python-multipart, installed as FastAPI's form parser)
is built for one finite ``multipart/form-data`` request body; on a malformed part it raises and its
state cannot resume at the next boundary. An access controller's alert stream never ends, and the
vendors' streams bend RFC 2046 (a ``Content-Length`` per part, no CRLF before the first boundary,
boundary lines with or without the closing ``--``, stray bytes after a part). The one property we
need most — a garbage part costs that part and nothing else — is resynchronisation on the next
boundary line, which is what this parser does and all it does.

Usage: ``parser = PartStream(boundary)``; ``for item in parser.feed(chunk): ...`` yields
:class:`Part` (headers, body) and :class:`Garbage` (reason, the bytes skipped). Memory is bounded:
headers beyond ``max_header_bytes`` and bodies beyond ``max_part_bytes`` are skipped as garbage.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

MAX_HEADER_BYTES = 8 * 1024
MAX_PART_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Part:
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Garbage:
    reason: str
    data: bytes


def boundary_of(content_type: str) -> str | None:
    """The ``boundary`` parameter of a ``multipart/*`` content type, unquoted."""
    kind, _, params = content_type.partition(";")
    if not kind.strip().lower().startswith("multipart/"):
        return None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip():
            return value.strip().strip('"')
    return None


class PartStream:
    """Feed bytes, get parts; resynchronises on the next ``--boundary`` line after any garbage."""

    def __init__(self, boundary: str, *, max_header_bytes: int = MAX_HEADER_BYTES,
                 max_part_bytes: int = MAX_PART_BYTES) -> None:
        self.delimiter = b"--" + boundary.encode("latin-1")
        self.max_header_bytes = max_header_bytes
        self.max_part_bytes = max_part_bytes
        self._buf = bytearray()
        self._state = "preamble"          # preamble | headers | body
        self._headers: dict[str, str] = {}
        self._length: int | None = None

    def feed(self, data: bytes) -> Iterator[Part | Garbage]:
        self._buf += data
        while True:
            item = self._step()
            if item is None:
                return
            if isinstance(item, Part | Garbage):
                yield item

    # Each step consumes some bytes and returns an item, True (progress, nothing to yield) or None
    # (needs more bytes).
    def _step(self) -> Part | Garbage | bool | None:
        if self._state == "preamble":
            return self._preamble()
        if self._state == "headers":
            return self._read_headers()
        return self._read_body()

    def _preamble(self) -> Garbage | bool | None:
        at = self._buf.find(self.delimiter)
        if at < 0:
            keep = len(self.delimiter) - 1   # a delimiter may be split across chunks
            if len(self._buf) > keep + self.max_part_bytes:
                junk = bytes(self._buf[:-keep])
                del self._buf[:-keep]
                return Garbage("no boundary line", junk)
            return None
        end = self._buf.find(b"\n", at)
        if end < 0:
            return None
        junk = bytes(self._buf[:at])
        del self._buf[:end + 1]
        self._state = "headers"
        self._headers, self._length = {}, None
        if junk.strip():
            return Garbage("bytes outside a part", junk)
        return True

    def _read_headers(self) -> Garbage | bool | None:
        window = self.max_header_bytes + 4   # never scan a big read to its end for each part
        sep = self._buf.find(b"\r\n\r\n", 0, window)
        width = 4
        alt = self._buf.find(b"\n\n", 0, window)
        if alt >= 0 and (sep < 0 or alt < sep):
            sep, width = alt, 2
        if sep < 0:
            if len(self._buf) > self.max_header_bytes:
                return self._resync("part headers too long")
            return None
        raw = bytes(self._buf[:sep])
        if self.delimiter in raw:
            return self._resync("part without headers")
        headers: dict[str, str] = {}
        for line in raw.decode("latin-1").splitlines():
            name, colon, value = line.partition(":")
            if not colon or not name.strip() or " " in name.strip():
                return self._resync(f"bad header line {line[:60]!r}")
            headers[name.strip().lower()] = value.strip()
        length: int | None = None
        if "content-length" in headers:
            text = headers["content-length"]
            if not text.isdigit() or int(text) > self.max_part_bytes:
                return self._resync(f"bad content-length {text[:20]!r}")
            length = int(text)
        del self._buf[:sep + width]
        self._headers, self._length, self._state = headers, length, "body"
        return True

    def _read_body(self) -> Part | Garbage | None:
        if self._length is not None:
            if len(self._buf) < self._length:
                return None
            body = bytes(self._buf[:self._length])
            del self._buf[:self._length]
        else:
            at = self._buf.find(self.delimiter)
            if at < 0:
                if len(self._buf) > self.max_part_bytes:
                    return self._resync("part too long")
                return None
            body = bytes(self._buf[:at]).removesuffix(b"\r\n").removesuffix(b"\n")
            del self._buf[:at]
        self._state = "preamble"
        return Part(self._headers, body)

    def _resync(self, reason: str) -> Garbage:
        """Drop bytes up to the next delimiter (or all but a delimiter's width) and look again."""
        at = self._buf.find(self.delimiter)
        cut = at if at >= 0 else max(0, len(self._buf) - len(self.delimiter) + 1)
        junk = bytes(self._buf[:cut])
        del self._buf[:cut]
        self._state = "preamble"
        return Garbage(reason, junk)
