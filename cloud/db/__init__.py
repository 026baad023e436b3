"""Storage of the cloud: connection pools, versioned migrations, partitions and rollups.

Extension points for the other cloud packages:

* **Migrations** — drop ``NNN_name.sql`` files into ``cloud/db/migrations/``. Numbers: 001–099
  ingest/storage, 100–199 alarms/work orders, 200–299 web/auth. A version may add
  ``NNN_name.timescale.sql`` or ``NNN_name.plain.sql`` beside (or instead of) the common file; the
  variant matching the database's storage mode is applied after the common file. Each version is
  applied in its own transaction and recorded in ``schema_migrations``; see :mod:`cloud.db.migrate`.
* **Tables to reference** — ``communities(id)``, ``buildings(id)``, ``gateways(id)``,
  ``devices(id)`` (int keys; ``code`` is the id used on the wire), ``alarm_events`` and
  ``device_events`` (raw uplink alarms/events; see :mod:`cloud.runtime.hooks` to be told after commit).
* **Connections** — :func:`cloud.db.pool.open_pool` gives a :class:`~cloud.db.pool.StoragePool`
  whose ``connection()`` is the one checkout of the cloud: psycopg/psycopg_pool errors become
  :class:`~cloud.runtime.errors.StorageError` there (:func:`~cloud.db.pool.map_error`).
  :func:`cloud.db.pool.connect` (sync) and :func:`cloud.db.pool.connect_async` are the single
  connections of the CLI, with the same deadline and mapping.
* **Storage mode** — :func:`cloud.db.migrate.storage_mode` / ``storage_mode_async``: the one
  reading of ``schema_meta``.
"""
