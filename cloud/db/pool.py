"""Connection pools (psycopg_pool) with errors mapped into :mod:`cloud.errors`.

Why a helper and not ``AsyncConnectionPool(...)`` at each call site: the timeouts, the
``check`` on checkout (a restarted database must not hand out dead connections) and the error
mapping must be the same for the ingest workers, the API and the CLI.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cloud.errors import StorageError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
"""Every connection attempt has a deadline: a black-holed database must not hang a worker."""


def conninfo(url: str, application: str) -> str:
    return psycopg.conninfo.make_conninfo(url, connect_timeout=CONNECT_TIMEOUT_S, application_name=application)


@contextlib.asynccontextmanager
async def open_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 8,
    application: str = "guanjia-cloud",
    wait: bool = True,
    timeout: float = 30.0,
) -> AsyncIterator[AsyncConnectionPool]:
    """An open :class:`AsyncConnectionPool`; with ``wait`` the first connections must succeed.

    ``wait=False`` lets a service start while the database is still down: the pool keeps
    reconnecting in the background and checkouts raise :class:`StorageError` until it is back.
    """
    pool = AsyncConnectionPool(
        conninfo(url, application),
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=timeout,
        check=AsyncConnectionPool.check_connection,
        reconnect_timeout=60,  # background retries (1, 2, 4 … s); after that it grows again on demand
        kwargs={"autocommit": False},
    )
    try:
        await pool.open(wait=wait, timeout=timeout)
    except (PoolTimeout, psycopg.Error) as exc:
        await pool.close()
        raise StorageError(f"cannot connect to the database: {exc}") from exc
    try:
        yield pool
    finally:
        await pool.close()


@contextlib.contextmanager
def connect(url: str, application: str = "guanjia-cli", autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A single synchronous connection for CLI commands."""
    try:
        conn = psycopg.connect(conninfo(url, application), autocommit=autocommit)
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to the database: {exc}") from exc
    try:
        with conn:
            yield conn
    except psycopg.Error as exc:
        raise StorageError(str(exc).strip()) from exc
