"""The cloud tier's exception tree. Third-party errors (psycopg, paho, uvicorn) are caught at the
adapter that called them and re-raised as one of these (``raise StorageError(...) from exc``),
so callers — the CLI, the service, the API — handle one tree::

    GuanjiaError
    └── CloudError                 root of everything the cloud raises on purpose
        ├── StorageError           the database refused or could not be reached
        │   └── MigrationError     a migration file is malformed or failed to apply
        ├── BrokerError            the MQTT broker refused or could not be reached
        └── RegistryError          a registry operation is invalid (unknown community, duplicate …)

Ingest never raises for bad *input*: a refused message becomes a dead letter with a reason code
(see :mod:`cloud.ingest.prepare`), because one hostile gateway must not stop the stream.
"""

from __future__ import annotations

from guanjia.errors import GuanjiaError


class CloudError(GuanjiaError):
    """Root of every error the cloud tier raises on purpose."""


class StorageError(CloudError):
    """The database refused a statement or could not be reached."""


class MigrationError(StorageError):
    """A migration file is malformed or could not be applied."""


class BrokerError(CloudError):
    """The MQTT broker refused the connection or could not be reached."""


class RegistryError(CloudError):
    """A registry request is invalid: unknown community/gateway, duplicate id, bad value."""
