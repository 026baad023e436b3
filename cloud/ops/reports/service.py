"""The scheduled report delivery of ``guanjia cloud serve`` (registered in :mod:`cloud.components`),
on the service's one clock, with the shipped tariff and ``GUANJIA_PUBLIC_URL`` for the links."""

from __future__ import annotations

from cloud.ops.reports.schedule import ReportDelivery
from cloud.ops.reports.tariffs import shipped
from cloud.runtime.context import Component, ServiceContext


def components(ctx: ServiceContext) -> list[Component]:
    return [ReportDelivery(shipped(), ctx.clock, ctx.config.public_url)]
