"""The ingest workers as :class:`cloud.service.CloudService` components (``--workers N``).

Each worker's options are built from the process's :class:`~cloud.runtime.context.CloudConfig`
(``--client-id-prefix``, ``--receive-maximum``, ``--batch-points``, ``--seq-window``, ``--group``)
and the settings (``GUANJIA_INGEST_CONFIRM_WINDOW_S``, ``GUANJIA_INGEST_BEHIND_LAG_S``, ``…_BEHIND_EXPIRY_S``);
what the config leaves unset keeps :class:`~cloud.ingest.worker.WorkerOptions`' defaults.
"""

from __future__ import annotations

import dataclasses

from cloud.ingest.backlog import BACKLOG_BEHIND_S, BEHIND_EXPIRY_S
from cloud.ingest.confirm import CONFIRM_WINDOW_S
from cloud.ingest.prepare import Policy
from cloud.ingest.worker import BATCH_POINTS, RECEIVE_MAXIMUM, IngestWorker, WorkerOptions, default_client_id
from cloud.runtime.context import CloudConfig, Component, ServiceContext
from cloud.runtime.errors import CloudError
from guanjia.core.settings import MqttUrl


def worker_options(config: CloudConfig, index: int, *, confirm_window_s: float = CONFIRM_WINDOW_S,
                   behind_lag_s: float = BACKLOG_BEHIND_S, behind_expiry_s: float = BEHIND_EXPIRY_S) -> WorkerOptions:
    """The options of worker ``index``: client id ``PREFIX-index`` (stable across restarts) or
    the default per-process one, the shared-subscription group, flow control, the seq window
    and the confirmation window."""
    prefix = config.client_id_prefix
    policy = Policy() if config.seq_window is None else Policy(seq_window=config.seq_window)
    return WorkerOptions(client_id=f"{prefix}-{index}" if prefix else default_client_id(index), group=config.group,
                         receive_maximum=config.receive_maximum or RECEIVE_MAXIMUM,
                         batch_points=config.batch_points or BATCH_POINTS, policy=policy,
                         confirm_window_s=confirm_window_s, behind_lag_s=behind_lag_s,
                         behind_expiry_s=behind_expiry_s)


@dataclasses.dataclass(slots=True)
class IngestComponent:
    index: int
    name: str = "ingest"

    async def run(self, ctx: ServiceContext) -> None:
        if not ctx.settings.mqtt_url:
            raise CloudError("GUANJIA_MQTT_URL is not set (the broker the gateways publish to)")
        worker = IngestWorker(ctx.pool, MqttUrl.parse(ctx.settings.mqtt_url), mode=ctx.mode,
                              options=worker_options(ctx.config, self.index,
                                                     confirm_window_s=ctx.settings.ingest_confirm_window_s,
                                                     behind_lag_s=ctx.settings.ingest_behind_lag_s,
                                                     behind_expiry_s=ctx.settings.ingest_behind_expiry_s),
                              metrics=ctx.metrics, hooks=ctx.hooks,
                              clock=ctx.clock)
        await worker.run()


def components(ctx: ServiceContext) -> list[Component]:
    return [IngestComponent(i, name=f"ingest-{i}") for i in range(ctx.config.workers)]
