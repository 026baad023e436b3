"""The inspection component of ``guanjia cloud serve`` (registered in :mod:`cloud.components`)."""

from __future__ import annotations

from cloud.ops.inspections.rounds import InspectionWatch
from cloud.ops.model.policy import context_policy
from cloud.runtime.context import Component, ServiceContext


def components(ctx: ServiceContext) -> list[Component]:
    return [InspectionWatch(context_policy(ctx), ctx.clock)]
