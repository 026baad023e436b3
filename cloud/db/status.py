"""Small health reads of the storage for operators' tools (``guanjia demo`` waits on one).

Why here and not in the command that asks: the command line carries no SQL (issue 16); the
statement lives beside the tables it reads, and the caller gets a number.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg


def recent_telemetry_rows(conn: psycopg.Connection[Any], within: dt.timedelta = dt.timedelta(minutes=10)) -> int:
    """Telemetry rows stored with a time in the last ``within`` (by the database's clock)."""
    row = conn.execute("SELECT count(*) FROM telemetry WHERE time > now() - %s", (within,)).fetchone()
    return int(row[0]) if row else 0
