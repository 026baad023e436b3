"""The planned-maintenance component of ``guanjia cloud serve`` (registered in :mod:`cloud.components`).

It shares the service's one work-order policy and clock (``ctx.policy``, ``ctx.clock``); the
templates are the shipped catalog (:mod:`cloud.ops.maintenance.templates`).
"""

from __future__ import annotations

from cloud.ops.maintenance.scheduler import MaintenanceScheduler
from cloud.ops.maintenance.templates import shipped
from cloud.ops.model.policy import context_policy
from cloud.runtime.context import Component, ServiceContext


def components(ctx: ServiceContext) -> list[Component]:
    return [MaintenanceScheduler(context_policy(ctx), shipped(), ctx.clock)]
