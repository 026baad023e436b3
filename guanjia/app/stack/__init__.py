"""The local service stack: a private PostgreSQL and a private Mosquitto on free ports.

Used by ``guanjia stack``, ``make demo`` and the test fixtures, so that tests and demos run the
same real services. When ``GUANJIA_DATABASE_URL`` / ``GUANJIA_MQTT_URL`` are set, callers use
those instead of starting anything.
"""

from guanjia.app.stack.mosquitto import MosquittoServer
from guanjia.app.stack.postgres import PostgresServer

__all__ = ["MosquittoServer", "PostgresServer"]
