"""The components of this part start inside the real CloudService and stop cleanly."""

from __future__ import annotations

import asyncio

from cloud.ops.service import components
from cloud.runtime.context import CloudConfig
from cloud.service import CloudService
from guanjia.core.settings import Settings


async def test_components_run_in_the_cloud_service(db_url: str) -> None:
    settings = Settings(mode="test", database_url=db_url, secret_key="test-secret-key-for-the-service-tests-0123456789")
    config = CloudConfig.from_settings(settings, api=False, prefer_timescale=False)
    async with CloudService(settings, config, components=[components]) as service:
        await asyncio.sleep(1.5)
        assert service.ctx is not None
        names = {t.get_name() for t in service._tasks}
        assert names == {"alarm-processor", "offline-watchdog", "escalation-ticker", "notification-sender",
                         "fleet-rules", "rule-commands"}
        assert all(not t.done() for t in service._tasks)
        async with service.ctx.pool.connection() as conn:
            cur = await conn.execute("SELECT last_bucket IS NULL FROM fleet_rule_state WHERE name = 'fleet'")
            assert await cur.fetchone() == (True,)  # the fleet rules made their first pass
