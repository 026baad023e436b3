"""Shared helper: fault flags and fault codes read from the hourly maxima.

Sudden equipment faults (a trapped passenger, a door-lock fault, a gate forced open) are reported
by the device itself as a fault code or a flag; in the hourly rollup they survive as the hour's
maximum. Turning them into per-fault hour series gives the health record its "faults by type"
and gives the detectors a statistic of exactly 1 in the hours the fault was present.
"""

from __future__ import annotations

import numpy as np

from cloud.analytics.frames import Array, HourlyFrame


def code_present(frame: HourlyFrame, metric: str, code: int, *, min_seconds: float = 0.0) -> Array:
    """1.0 in hours whose maximum of ``metric`` equals ``code`` (or whose minimum does), else 0; NaN = no data.

    ``min_seconds``: the code must also have been shown that long in the hour, read from the hour's
    mean (a code ``c`` shown ``s`` seconds and 0 otherwise averages ``c · s / 3600``; another code
    in the same hour only raises the mean, so this never hides a code that was there long enough) —
    the rollup's way of the edge rules' ``hold``, so a contact that bounces for seconds is no fault."""
    top = frame.column(metric, "max")
    low = frame.column(metric, "min")
    hit = (top == code) | (low == code)
    if min_seconds > 0:
        with np.errstate(invalid="ignore"):
            hit &= (low == code) | (frame.column(metric, "avg") >= code * min_seconds / 3600.0)
    out = np.where(hit, 1.0, 0.0)
    out[np.isnan(top)] = np.nan
    return out


def flag_present(frame: HourlyFrame, metric: str) -> Array:
    """1.0 in hours where a boolean metric was ever true (its hourly maximum ≥ 0.5)."""
    top = frame.column(metric, "max")
    out = np.where(top >= 0.5, 1.0, 0.0)
    out[np.isnan(top)] = np.nan
    return out


def episode_count(series: Array) -> int:
    """Number of separate runs of 1.0 (a fault lasting three hours is one fault)."""
    on = np.nan_to_num(series) >= 0.5
    return int(np.count_nonzero(on[1:] & ~on[:-1]) + (1 if on.size and on[0] else 0))
