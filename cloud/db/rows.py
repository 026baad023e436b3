"""INSERT statements written from typed rows, so a row's field order is its column order.

A :class:`~typing.NamedTuple` row type names its columns once; :func:`insert_sql` turns it into
``INSERT INTO table (a, b, …) VALUES (%s, %s, …)``. Callers bind an instance of the row — still a
plain tuple to psycopg, so nothing is slower than the positional tuples it replaces — and append
their own ``ON CONFLICT`` / ``RETURNING`` clauses.
"""

from __future__ import annotations


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
