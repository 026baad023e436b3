"""Typed rows of the ingest INSERTs: a row's field order *is* the statement's column order.

Alarm and device events used to travel from :mod:`cloud.ingest.prepare` to
:mod:`cloud.ingest.writer` as bare 13/14-item tuples that had to match the INSERT's column list
by position; one column added in the wrong place would have stored a severity as a message
without any error. Here each row is a :class:`~typing.NamedTuple` and
:func:`cloud.db.rows.insert_sql` writes the column list from its fields, so the order is stated
once. A NamedTuple is still a tuple: psycopg binds it as positional parameters, at the same cost
as before.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple


class AlarmEventRow(NamedTuple):
    """One ``alarm_events`` row: an edge alarm as received, or a security/incarnation alarm the
    writer raises itself (``device_id`` None: the gateway is the subject)."""

    gateway_id: int | None
    seq: int | None
    device_id: int | None
    device_code: str
    rule: str
    state: str
    severity: str
    ts: dt.datetime
    message: str
    value: float | None
    value_text: str | None
    work_order: bool
    labels: str
    """JSON text, cast to ``jsonb`` by the statement."""
    incarnation: str
    """The outbox incarnation of the message: the alarm side's ordering key needs it."""


class DeviceEventRow(NamedTuple):
    """One ``device_events`` row."""

    gateway_id: int | None
    seq: int | None
    device_id: int
    device_code: str
    type: str
    ts: dt.datetime
    data: str
    """JSON text, cast to ``jsonb`` by the statement."""
