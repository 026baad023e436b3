"""Typed rows both ways: INSERT statements written from typed rows, and one typed row read back.

A :class:`~typing.NamedTuple` row type names its columns once; :func:`insert_sql` turns it into
``INSERT INTO table (a, b, …) VALUES (%s, %s, …)``. Callers bind an instance of the row — still a
plain tuple to psycopg, so nothing is slower than the positional tuples it replaces — and append
their own ``ON CONFLICT`` / ``RETURNING`` clauses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import class_row

T = TypeVar("T")


def insert_sql(table: str, row: type[tuple[object, ...]], *, casts: dict[str, str] | None = None,
               returning: str | None = None) -> str:
    """``INSERT INTO table (fields…) VALUES (%s…)`` for a NamedTuple ``row`` type; ``casts`` maps a
    field to the SQL type its placeholder is cast to (``{"labels": "jsonb"}``); ``returning`` adds
    a ``RETURNING`` clause (for statements without an ``ON CONFLICT`` in between)."""
    fields: tuple[str, ...] = getattr(row, "_fields")  # noqa: B009 - a NamedTuple class, not an instance
    casts = casts or {}
    unknown = set(casts) - set(fields)
    if unknown:
        raise ValueError(f"casts name fields {sorted(unknown)} that {row.__name__} does not have")
    values = ", ".join(f"%s::{casts[f]}" if f in casts else "%s" for f in fields)
    sql = f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({values})"
    return f"{sql} RETURNING {returning}" if returning else sql


async def fetch_one(conn: AsyncConnection[Any], row: type[T], sql: str, params: Sequence[object]) -> T | None:
    """The first row of ``sql`` as a ``row`` (a dataclass or model whose fields are the selected
    columns), or None: the read half of the typed-row rule, so a repository's ``get_x`` is one call
    plus its own not-found error (:func:`cloud.ops.model.errors.found`)."""
    async with conn.cursor(row_factory=class_row(row)) as cur:
        await cur.execute(sql, params)
        return await cur.fetchone()
