"""The cheapest statement that proves the database answers: ``/healthz``'s database check.

Its own module because it reads no table: it belongs to no concept of the schema, and the router
must not carry SQL (issue 16)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection


async def ping(conn: AsyncConnection[Any]) -> None:
    """One round trip; raises the driver's error when the server does not answer."""
    await conn.execute("SELECT 1")
