"""Finding frames in a serial receive buffer, for the 0x68 … 0x16 framed meter protocols.

DL/T 645 and CJ/T 188 frame the same way: optional 0xFE wake-up bytes, a 0x68 start byte, a fixed
header that carries the data length, the data, a checksum and a 0x16 end byte. Only the header's
shape differs, so each codec passes a function that reads the total frame length from a header
(or says the 0x68 is not a plausible start) and the scan lives here once.
"""

from __future__ import annotations

from collections.abc import Callable

START = 0x68
END = 0x16

Buffer = bytes | bytearray


def split_frame(buffer: Buffer, header: int, total_length: Callable[[Buffer, int], int | None]
                ) -> tuple[bytes | None, int]:
    """The first complete frame in a receive buffer: ``(frame bytes, consumed)``.

    ``consumed`` bytes of the buffer are done with (noise, wake-up bytes and the frame itself);
    ``(None, consumed)`` means no complete frame yet — keep the rest and read more. ``header`` is
    how many bytes from the start byte ``total_length(buffer, index)`` needs; it returns the
    frame's length from its start byte to its end byte, or None when the header is not plausible.
    A 0x68 that does not start a plausible frame (or whose end byte is wrong) is skipped as noise,
    so a garbage burst on the bus costs only the bytes it occupies.
    """
    index = 0
    size = len(buffer)
    while index < size:
        if buffer[index] != START:
            index += 1
            continue
        if size - index < header:
            return None, index
        total = total_length(buffer, index)
        if total is None:
            index += 1
            continue
        if size - index < total:
            return None, index
        if buffer[index + total - 1] != END:
            index += 1
            continue
        return bytes(buffer[index:index + total]), index + total
    return None, size
