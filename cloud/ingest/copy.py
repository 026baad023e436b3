"""PostgreSQL binary COPY of ``telemetry_readings`` built with numpy, no Python object per point.

The physical layout is one row per *reading* (a device's metrics at one instant)::

    telemetry_readings(time timestamptz, device_id int, quality smallint,
                       metric_ids smallint[], vals float8[], qualities smallint[] NULL)

and ``telemetry`` is a view that unnests it to the narrow (time, device_id, metric_id, value,
quality) shape every reader uses. Measured (docs/architecture.md): one row per reading of four
metrics costs PostgreSQL about a third of the CPU per point of one row per point, and 40 % of
the disk, because the per-row overhead (tuple header, index entry, WAL record) is paid once per
reading instead of once per point.

All readings with the same number of metrics (and the same presence of per-metric qualities)
have the same binary row size, so a group of them is one numpy structured array whose
``tobytes()`` is the COPY data: array headers and length words come from a cached template.
NaN in ``vals`` means "no value" (the wire never carries NaN; the view turns it into NULL).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER: Final = b"\xff\xff"
PG_EPOCH_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z in Unix milliseconds
COLUMNS: Final = "time, device_id, quality, metric_ids, vals, qualities"
COPY_SQL: Final = f"COPY telemetry_readings ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
_INT2_OID: Final = 21
_FLOAT8_OID: Final = 701
_HDR: Final = [("ndim", ">i4"), ("hasnull", ">i4"), ("oid", ">i4"), ("dim", ">i4"), ("lb", ">i4")]


def _row_dtype(n: int, with_qualities: bool) -> np.dtype[np.void]:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        ("nf", ">i2"), ("l_t", ">i4"), ("t", ">i8"), ("l_d", ">i4"), ("d", ">i4"), ("l_q", ">i4"), ("q", ">i2"),
        ("l_m", ">i4"), ("m_h", _HDR), ("m", [("len", ">i4"), ("v", ">i2")], (n,)),
        ("l_v", ">i4"), ("v_h", _HDR), ("v", [("len", ">i4"), ("v", ">f8")], (n,)),
        ("l_qs", ">i4"),
    ]
    if with_qualities:
        fields += [("qs_h", _HDR), ("qs", [("len", ">i4"), ("v", ">i2")], (n,))]
    return np.dtype(fields)


def _array(rows: npt.NDArray[np.void], header: str, elements: str, oid: int, n: int, size: int) -> None:
    """Fill a one-dimensional array's header and its elements' length words."""
    rows[header]["ndim"] = 1
    rows[header]["hasnull"] = 0
    rows[header]["oid"] = oid
    rows[header]["dim"] = n
    rows[header]["lb"] = 1
    rows[elements]["len"] = size


_TEMPLATES: dict[tuple[int, bool], npt.NDArray[np.void]] = {}


def _template(n: int, with_qualities: bool, count: int) -> npt.NDArray[np.void]:
    """Rows with every constant field filled (counts, lengths, array headers), cached and grown
    by powers of two; callers overwrite the data fields and copy out with ``tobytes``."""
    key = (n, with_qualities)
    cached = _TEMPLATES.get(key)
    if cached is None or len(cached) < count:
        size = 1 << max(8, (count - 1).bit_length())
        cached = np.zeros(size, dtype=_row_dtype(n, with_qualities))
        cached["nf"] = 6
        cached["l_t"] = 8
        cached["l_d"] = 4
        cached["l_q"] = 2
        cached["l_m"] = 20 + 6 * n
        _array(cached, "m_h", "m", _INT2_OID, n, 2)
        cached["l_v"] = 20 + 12 * n
        _array(cached, "v_h", "v", _FLOAT8_OID, n, 8)
        if with_qualities:
            cached["l_qs"] = 20 + 6 * n
            _array(cached, "qs_h", "qs", _INT2_OID, n, 2)
        else:
            cached["l_qs"] = -1
        _TEMPLATES[key] = cached
    return cached[:count]


def encode_readings(
    ts_ms: npt.NDArray[np.int64],
    device: npt.NDArray[np.int32],
    quality: npt.NDArray[np.int16],
    metric_ids: npt.NDArray[np.int16],
    values: npt.NDArray[np.float64],
    qualities: npt.NDArray[np.int16] | None = None,
) -> bytes:
    """COPY rows (no signature/trailer) for ``k`` readings of ``n`` metrics each.

    ``ts_ms``, ``device``, ``quality``: shape (k,); ``metric_ids``, ``values`` and optional
    per-metric ``qualities``: shape (k, n).
    """
    k, n = values.shape
    rows = _template(n, qualities is not None, k)
    rows["t"] = (ts_ms - PG_EPOCH_MS) * 1000
    rows["d"] = device
    rows["q"] = quality
    rows["m"]["v"] = metric_ids
    rows["v"]["v"] = values
    if qualities is not None:
        rows["qs"]["v"] = qualities
    return rows.tobytes()


def stream(chunks: list[bytes | memoryview]) -> bytes:
    """A complete binary COPY stream from encoded row chunks."""
    return b"".join((SIGNATURE, *chunks, TRAILER))
