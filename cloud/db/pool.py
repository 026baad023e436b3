"""Connection pools (psycopg_pool) with errors mapped into :mod:`cloud.runtime.errors`.

Why a helper and not ``AsyncConnectionPool(...)`` at each call site: the timeouts, the
``check`` on checkout (a restarted database must not hand out dead connections) and the error
mapping must be the same for the ingest workers, the API and the CLI.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from cloud.runtime.errors import StorageError, StorageRejected, StorageUnavailable

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
"""Every connection attempt has a deadline: a black-holed database must not hang a worker."""

REQUEST_CHECKOUT_TIMEOUT_S = 1.5
"""How long an HTTP request waits for a pooled connection before answering 503. A person at a
login form must hear "the database is unavailable" within 2 s, not after the 30 s the background
workers are willing to wait (issue 14 §6); the API therefore has a pool of its own."""


def map_error(exc: BaseException) -> StorageError | None:
    """The storage error for a driver/pool error, or None when ``exc`` is something else.

    The one place psycopg's and psycopg_pool's errors become the cloud's: connection-level
    failures → :class:`StorageUnavailable`; values the database refuses → :class:`StorageRejected`.
    Integrity and programming errors are left alone: the code that issued the statement handles
    them (a unique violation means "exists")."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, (PoolTimeout, PoolClosed, psycopg.OperationalError, psycopg.InterfaceError)):
        return StorageUnavailable(f"database unavailable: {str(exc).strip()[:200]}")
    if isinstance(exc, psycopg.DataError):
        return StorageRejected(f"value refused by the database: {str(exc).strip()[:200]}")
    return None


class StoragePool(AsyncConnectionPool[Any]):
    """An :class:`AsyncConnectionPool` whose ``connection()`` raises the cloud's storage errors.

    Both the checkout (pool timeout, pool closed) and the block using the connection (server
    gone mid-query, refused value) are covered, so every ``async with pool.connection()`` of the
    cloud is mapped at this one boundary without touching its call sites."""

    @contextlib.asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        try:
            async with super().connection(timeout) as conn:
                yield conn
        except psycopg.Error as exc:  # PoolTimeout and PoolClosed are psycopg.OperationalErrors
            if isinstance(exc, StorageError) or (mapped := map_error(exc)) is None:
                raise
            raise mapped from exc


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
) -> AsyncIterator[StoragePool]:
    """An open :class:`AsyncConnectionPool`; with ``wait`` the first connections must succeed.

    ``wait=False`` lets a service start while the database is still down: the pool keeps
    reconnecting in the background and checkouts raise :class:`StorageError` until it is back.
    ``timeout`` bounds every checkout (see :data:`REQUEST_CHECKOUT_TIMEOUT_S` for request pools).
    """
    pool = StoragePool(
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


@contextlib.asynccontextmanager
async def connect_async(url: str, application: str = "guanjia-cli",
                        autocommit: bool = False) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A single asynchronous connection (CLI commands that call the async repositories).

    Same deadline and application name as the pools, and the same mapping: a database that
    cannot be reached is a :class:`StorageError` (a one-line message from the CLI, not a
    traceback); errors the caller handles (a unique violation means "exists") pass unchanged."""
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo(url, application), autocommit=autocommit)
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to the database: {exc}") from exc
    try:
        async with conn:
            yield conn
    except psycopg.Error as exc:
        if isinstance(exc, StorageError) or (mapped := map_error(exc)) is None:
            raise
        raise mapped from exc
