"""PostgreSQL binary COPY rows of ``telemetry`` built with numpy, without a Python object per row.

Why by hand: a telemetry row is five fixed-width fields (time int8, device_id int4, metric_id
int2, value float8, quality int2), so a whole batch is one numpy structured array with
big-endian fields and the length words pre-filled — ``tobytes()`` *is* the COPY stream. This is
several times faster than ``Copy.write_row`` per row (measured in ``bench/ingest.py``, see
``docs/architecture.md``). A NULL value (a reading whose quality says it could not be read) uses
a second, shorter row layout (length -1, no data); both kinds may be mixed in one stream.

Times are PostgreSQL ``timestamptz`` binary: microseconds since 2000-01-01 UTC.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER: Final = b"\xff\xff"
PG_EPOCH_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z in Unix milliseconds
COLUMNS: Final = "time, device_id, metric_id, value, quality"
COPY_SQL: Final = f"COPY telemetry ({COLUMNS}) FROM STDIN (FORMAT BINARY)"

ROW: Final = np.dtype([
    ("nf", ">i2"), ("l_t", ">i4"), ("t", ">i8"), ("l_d", ">i4"), ("d", ">i4"), ("l_m", ">i4"), ("m", ">i2"),
    ("l_v", ">i4"), ("v", ">f8"), ("l_q", ">i4"), ("q", ">i2"),
])
NULL_ROW: Final = np.dtype([
    ("nf", ">i2"), ("l_t", ">i4"), ("t", ">i8"), ("l_d", ">i4"), ("d", ">i4"), ("l_m", ">i4"), ("m", ">i2"),
    ("l_v", ">i4"), ("l_q", ">i4"), ("q", ">i2"),
])
_FIXED: Final = {"nf": 5, "l_t": 8, "l_d": 4, "l_m": 2, "l_v": 8, "l_q": 2}


def encode_rows(
    ts_ms: npt.NDArray[np.int64],
    device: npt.NDArray[np.int32],
    metric: npt.NDArray[np.int16],
    value: npt.NDArray[np.float64],
    quality: npt.NDArray[np.int16],
) -> bytes:
    """Rows (no signature/trailer) for equally long columns; NaN in ``value`` is written as NULL.

    NaN never reaches here from the wire (the contract rejects non-finite numbers), so it is
    free to mean "no value" inside the ingest pipeline.
    """
    null = np.isnan(value)
    if not null.any():
        return _fill(ROW, ts_ms, device, metric, quality, value).tobytes()
    keep = ~null
    full = _fill(ROW, ts_ms[keep], device[keep], metric[keep], quality[keep], value[keep])
    empty = _fill(NULL_ROW, ts_ms[null], device[null], metric[null], quality[null], None)
    return full.tobytes() + empty.tobytes()


_TEMPLATES: dict[tuple[int, bool], npt.NDArray[np.void]] = {}


def _template(dtype: np.dtype[np.void], n: int) -> npt.NDArray[np.void]:
    """Rows of ``dtype`` with the constant fields (field count, lengths) already filled.

    Cached and grown by powers of two: filling six constant columns per batch would cost as
    much as the data columns. Callers overwrite the data fields and copy out with ``tobytes``.
    """
    key = (dtype.itemsize, True)
    cached = _TEMPLATES.get(key)
    if cached is None or len(cached) < n:
        size = 1 << max(10, (n - 1).bit_length())
        cached = np.empty(size, dtype=dtype)
        for name, const in _FIXED.items():
            if name in dtype.names:  # type: ignore[operator]
                cached[name] = const
        if "v" not in dtype.names:  # type: ignore[operator]
            cached["l_v"] = -1
        _TEMPLATES[key] = cached
    return cached[:n]


def _fill(
    dtype: np.dtype[np.void],
    ts_ms: npt.NDArray[np.int64],
    device: npt.NDArray[np.int32],
    metric: npt.NDArray[np.int16],
    quality: npt.NDArray[np.int16],
    value: npt.NDArray[np.float64] | None,
) -> npt.NDArray[np.void]:
    rows = _template(dtype, len(ts_ms))
    if value is not None:
        rows["v"] = value
    rows["t"] = (ts_ms - PG_EPOCH_MS) * 1000
    rows["d"] = device
    rows["m"] = metric
    rows["q"] = quality
    return rows


def stream(chunks: list[bytes]) -> bytes:
    """A complete binary COPY stream from encoded row chunks."""
    return b"".join((SIGNATURE, *chunks, TRAILER))
