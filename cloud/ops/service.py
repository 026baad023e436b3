"""The alarm / work-order components of ``guanjia cloud serve`` (registered in :mod:`cloud.components`).

* ``alarm-processor`` — ingest's ``alarm_events`` → alarms → work orders → routing → inbox;
* ``offline-watchdog`` — gateway last-will / missing heartbeat → ``gateway_offline`` alarms;
* ``escalation-ticker`` — unaccepted / overdue orders climb the chain;
* ``notification-sender`` — webhooks, email, messengers from the outbox, with retries;
* ``fleet-rules`` — cloud-side rules on hourly rollups (energy vs its weekday/hour normal).

The work-order policy and the clock come from the service context: ``ctx.policy``
(``GUANJIA_WO_POLICY`` loaded once at start-up, shared with the API, the web inbox and analytics)
and ``ctx.clock``. Configuration (environment, or ``ctx.options.extra``): ``GUANJIA_SMTP_URL``
(see :mod:`cloud.ops.delivery.email`), ``GUANJIA_HEARTBEAT_TIMEOUT_S`` (default 120),
``GUANJIA_FLEET_RULES`` (extra fleet rule files).
The reconnect grace of inhibition (one incident, one ticket) is the policy's ``inhibition.grace``
(default 3 min; see ``docs/workorders.md``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from cloud.ops.alarms.offline import OfflineWatchdog
from cloud.ops.alarms.processor import AlarmProcessor
from cloud.ops.delivery.email import SmtpConfig
from cloud.ops.delivery.sender import NotificationSender
from cloud.ops.escalation import EscalationTicker
from cloud.ops.fleetrules.runner import FleetRulesComponent


def _option(ctx: Any, key: str, env: str) -> str | None:
    value = ctx.options.extra.get(key) if ctx is not None else None
    return str(value) if value is not None else os.environ.get(env)


def components(ctx: Any) -> list[Any]:
    policy, clock = ctx.policy, ctx.clock
    smtp_url = _option(ctx, "smtp_url", "GUANJIA_SMTP_URL")
    heartbeat = float(_option(ctx, "heartbeat_timeout_s", "GUANJIA_HEARTBEAT_TIMEOUT_S") or 120)
    return [
        AlarmProcessor(policy, clock),
        OfflineWatchdog(policy, clock, heartbeat_timeout=timedelta(seconds=heartbeat)),
        EscalationTicker(policy, clock),
        NotificationSender(policy, smtp=SmtpConfig.parse(smtp_url) if smtp_url else None, clock=clock),
        FleetRulesComponent(policy, clock, extra_rules=[p for p in (_option(ctx, "fleet_rules",
                                                                           "GUANJIA_FLEET_RULES"),) if p]),
    ]
