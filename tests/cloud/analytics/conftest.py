"""The analytics tests' ``conn``: a transactional connection to the test's migrated database.

It stays here, overriding the autocommit ``conn`` of ``tests/plugins/workorders.py``, because
these tests commit where the product would (the helpers in ``tests/support/analytics.py`` too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest


@pytest.fixture
async def conn(analytics_db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(analytics_db) as connection:
        yield connection
