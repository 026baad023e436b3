"""The cloud tier's exception tree. Third-party errors (psycopg, paho, uvicorn) are caught at the
adapter that called them and re-raised as one of these (``raise StorageError(...) from exc``),
so callers — the CLI, the service, the API — handle one tree::

    GuanjiaError
    └── CloudError                 root of everything the cloud raises on purpose
        ├── StorageError           the database refused or could not be reached
        │   ├── StorageUnavailable the database is down / unreachable / the pool is exhausted (→ 503)
        │   ├── StorageRejected    the database refused a value (a NUL byte in text …) (→ 422)
        │   └── MigrationError     a migration file is malformed or failed to apply
        ├── BrokerError            the MQTT broker refused or could not be reached
        └── RegistryError          a registry operation is invalid (unknown community, duplicate …)

Ingest never raises for bad *input*: a refused message becomes a dead letter with a reason code
(see :mod:`cloud.ingest.prepare`), because one hostile gateway must not stop the stream.
"""

from __future__ import annotations

import psycopg

from guanjia.core.errors import GuanjiaError


class CloudError(GuanjiaError):
    """Root of every error the cloud tier raises on purpose."""


class StorageError(CloudError):
    """The database refused a statement or could not be reached."""


class StorageUnavailable(StorageError, psycopg.OperationalError):
    """The database could not be reached in time: connection refused or lost, server shutting
    down, no pooled connection free within the checkout timeout.

    Raised by :class:`cloud.db.pool.StoragePool` for psycopg's ``OperationalError`` /
    ``InterfaceError`` and psycopg_pool's ``PoolTimeout``. It is *also* a
    ``psycopg.OperationalError`` on purpose: the background loops (ingest, escalation, notify)
    retry on driver errors, and must keep doing so for the mapped error."""


class StorageRejected(StorageError, psycopg.DataError):
    """The database refused a value of the request (a NUL byte in text, a number out of range):
    the caller's input is wrong, not the storage. Also a ``psycopg.DataError`` (see above)."""


class MigrationError(StorageError):
    """A migration file is malformed or could not be applied."""


class BrokerError(CloudError):
    """The MQTT broker refused the connection or could not be reached."""


class RegistryError(CloudError):
    """A registry request is invalid: unknown community/gateway, duplicate id, bad value."""
