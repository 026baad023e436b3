"""The ingest workers as :class:`cloud.service.CloudService` components (``--workers N``)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from cloud.ingest.worker import IngestWorker, WorkerOptions, default_client_id
from cloud.runtime.errors import CloudError
from guanjia.core.settings import MqttUrl

if TYPE_CHECKING:
    from cloud.service import Component, ServiceContext


@dataclasses.dataclass(slots=True)
class IngestComponent:
    index: int
    name: str = "ingest"

    async def run(self, ctx: ServiceContext) -> None:
        if not ctx.settings.mqtt_url:
            raise CloudError("GUANJIA_MQTT_URL is not set (the broker the gateways publish to)")
        base: WorkerOptions = ctx.options.extra.get("worker_options") or WorkerOptions()
        prefix = ctx.options.extra.get("client_id_prefix")
        client_id = f"{prefix}-{self.index}" if prefix else default_client_id(self.index)
        options = dataclasses.replace(base, client_id=client_id, group=ctx.options.group)
        worker = IngestWorker(ctx.pool, MqttUrl.parse(ctx.settings.mqtt_url), mode=ctx.mode, options=options,
                              metrics=ctx.metrics, hooks=ctx.hooks, clock=ctx.clock)
        await worker.run()


def components(ctx: ServiceContext) -> list[Component]:
    return [IngestComponent(i, name=f"ingest-{i}") for i in range(ctx.options.workers)]
