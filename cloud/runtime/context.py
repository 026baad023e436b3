"""What a cloud component is and what it is given: :class:`Component`, :class:`ServiceContext`,
and the one typed :class:`CloudConfig` of a process.

Why here, at the bottom of the cloud: every part that contributes components (ingest, storage
maintenance, ops, analytics, the API server) needs these three names, and the assembly in
:mod:`cloud.service` sits at the top. Defining them in the assembly made the storage layer and
analytics import the top of the house; defining them here lets every layer depend downwards only.

A component is any object with ``name: str`` and ``async def run(self, ctx: ServiceContext)``
that runs until cancelled; it must clean up in ``finally``/``async with`` (the ingest workers, for
instance, finish their in-flight commit and disconnect so unacknowledged messages are redelivered).
A factory (:data:`ComponentFactory`) turns the context into the components of one part; the list
of factories is :data:`cloud.components.COMPONENTS`.

Settings are read once: :meth:`CloudConfig.from_settings` is the only place the knobs of the
components are taken from :class:`~guanjia.core.settings.Settings` (the ``GUANJIA_*`` environment)
and the command line's flags. Components read ``ctx.config``, never ``os.environ``: a test builds
a config with the values it wants instead of patching the environment, and a process reads its
environment at one moment, not whenever a component happens to start.

The runtime imports nothing from the layers above it, not even for type checking: the after-commit
hooks (:mod:`cloud.runtime.hooks`) live beside the context, and the work-order policy, a domain
class of :mod:`cloud.ops.model.policy`, travels as an opaque ``object`` that ops narrows with
:func:`cloud.ops.model.policy.context_policy`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from cloud.runtime.errors import CloudError
from cloud.runtime.hooks import IngestHooks
from cloud.runtime.metrics import Metrics

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from guanjia.core.clock import Clock
    from guanjia.core.settings import Settings

StorageMode = Literal["timescale", "plain"]
"""TimescaleDB hypertables or plain PostgreSQL range partitions (decided once by the first migration)."""


@dataclass(frozen=True, slots=True)
class CloudConfig:
    """Every knob a cloud process's components read, typed and frozen, built once at start-up.

    The first group comes from the command line (``guanjia cloud serve|ingest``); the rest from
    :class:`~guanjia.core.settings.Settings` (same ``GUANJIA_*`` variables the components used to
    read themselves). Analytics' scheduling knobs have no environment variable: tests and
    accelerated simulations set them when they build the config.
    """

    database_url: str
    mqtt_url: str | None = None
    # process shape (command-line flags)
    workers: int = 1
    api: bool = True
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    """``guanjia cloud ingest --metrics-port``: the process's ``GET /metrics`` without the API
    (:class:`cloud.server.MetricsServer`); 0 = none (``serve`` has it on the API)."""
    group: str = "guanjia-ingest"
    pool_size: int = 8
    migrate: bool = True
    prefer_timescale: bool = True
    # ingest workers (``--client-id-prefix``, ``--receive-maximum``, ``--batch-points``, ``--seq-window``)
    client_id_prefix: str | None = None
    receive_maximum: int | None = None
    """None: the worker's default (:data:`cloud.ingest.worker.RECEIVE_MAXIMUM`)."""
    batch_points: int | None = None
    """None: the worker's default (:data:`cloud.ingest.worker.BATCH_POINTS`)."""
    seq_window: int | None = None
    """None: the ingest policy's default (:data:`cloud.ingest.prepare.SEQ_WINDOW`)."""
    # ops (settings)
    wo_policy: Path | None = None
    smtp_url: str | None = None
    sms_url: str | None = dataclasses.field(default=None, repr=False)  # carries the access key
    voice_url: str | None = dataclasses.field(default=None, repr=False)  # carries the access key
    public_url: str | None = None
    heartbeat_timeout_s: float = 120.0
    fleet_rules: tuple[str, ...] = ()
    fleet_stream_rules: tuple[str, ...] = ()
    # analytics
    analytics_interval_s: float = 900.0
    analytics_train_days: int = 14
    analytics_retrain_s: float = 86_400.0
    analytics_data_clock: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **flags: Any) -> CloudConfig:
        """The config of this process: the settings' values, then ``flags`` (command-line
        options, or what a test wants) over them. A missing database URL is a start-up error."""
        if not settings.database_url:
            raise CloudError("GUANJIA_DATABASE_URL is not set (a PostgreSQL/TimescaleDB URL)")
        base = cls(
            database_url=settings.database_url,
            mqtt_url=settings.mqtt_url,
            wo_policy=settings.wo_policy,
            smtp_url=settings.smtp_url or None,
            sms_url=settings.sms_url or None,
            voice_url=settings.voice_url or None,
            public_url=settings.public_url or None,
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
            # GUANJIA_FLEET_RULES names one file; GUANJIA_FLEET_STREAM_RULES a PATH-like list
            fleet_rules=tuple(p for p in (settings.fleet_rules,) if p),
            fleet_stream_rules=tuple(p for p in (settings.fleet_stream_rules or "").split(os.pathsep) if p),
        )
        return dataclasses.replace(base, **flags)


class EdgeConfigCheck(Protocol):
    """Validate an edge configuration bundle (file name → text) as the edge itself would: return
    its version, or raise :class:`~guanjia.core.errors.ConfigError` naming file:line:field.

    Why a protocol here and not an import: the edge's validators (``guanjia edge check``) live in
    ``edge/``, a sibling tier the cloud may not import, and moving the whole agent config model
    (links, Modbus and meter-bus rules, profile resolution, rule loading) down into
    ``guanjia.core`` would drag the edge's knowledge into every tier. So the cloud declares what
    it needs, and :mod:`guanjia.app` — which may import both — passes
    :func:`edge.bundle.check_bundle` in when it builds the service. A process built without it
    (an ingest-only worker, a test of something else) answers the config routes with 503."""

    def __call__(self, files: Mapping[str, str], /) -> str: ...


@dataclass(slots=True)
class ServiceContext:
    """What every component gets: settings, the process's config, the shared pool, metrics, ingest
    hooks, the storage mode, and the process's one clock and one work-order policy.

    ``clock`` is where wall time enters the cloud: components, the API and the web pages read
    ``now`` from it and pass it down, so a test (or ``pytest --at``) controls every business time.
    ``policy`` is ``config.wo_policy`` (``GUANJIA_WO_POLICY``) loaded once at start-up: accepting
    an order through the API, the web inbox or the escalation ticker computes deadlines from the
    same SLA clocks.
    """

    settings: Settings
    pool: AsyncConnectionPool
    metrics: Metrics
    hooks: IngestHooks
    config: CloudConfig
    mode: StorageMode
    clock: Clock
    policy: object
    """The work-order policy (a :class:`cloud.ops.model.policy.Policy`; read it with ``context_policy``)."""
    edge_config: EdgeConfigCheck | None = None
    """The edge's bundle validator, injected by :mod:`guanjia.app` (see :class:`EdgeConfigCheck`)."""

    @property
    def database_url(self) -> str:
        """For components that open connections of their own (``LISTEN`` needs a dedicated one)."""
        return self.config.database_url


class Component(Protocol):
    name: str

    async def run(self, ctx: ServiceContext) -> None: ...


ComponentFactory = Callable[[ServiceContext], "list[Component]"]
"""``factory(ctx) -> components``: one part's contribution to a process (none when the config
says the part is off, e.g. ``--no-api`` or ``--workers 0``)."""


__all__ = ["CloudConfig", "Component", "ComponentFactory", "EdgeConfigCheck", "ServiceContext", "StorageMode"]
