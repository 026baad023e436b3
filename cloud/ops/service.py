"""The alarm / work-order components of ``guanjia cloud serve`` (registered in :mod:`cloud.components`).

* ``alarm-processor`` — ingest's ``alarm_events`` → alarms → work orders → routing → inbox;
* ``offline-watchdog`` — gateway last-will / missing heartbeat → ``gateway_offline`` alarms;
* ``escalation-ticker`` — unaccepted / overdue orders climb the chain;
* ``notification-sender`` — webhooks, email, messengers, SMS from the outbox, with retries;
* ``fleet-rules`` — cloud-side rules on hourly rollups (energy vs its weekday/hour normal);
* ``command-dispatcher`` — remote commands to devices through their gateways (with a broker URL);
* ``config-rollout`` — staged configuration rollouts to the gateways (with a broker URL).

The work-order policy and the clock come from the service context: ``ctx.policy``
(``GUANJIA_WO_POLICY`` loaded once at start-up, shared with the API, the web inbox and analytics)
and ``ctx.clock``. Configuration comes from ``ctx.config`` (read once from the settings, see
:class:`cloud.runtime.context.CloudConfig`): ``GUANJIA_SMTP_URL`` (see :mod:`cloud.ops.delivery.email`),
``GUANJIA_SMS_URL`` (see :mod:`cloud.ops.delivery.sms`),
``GUANJIA_HEARTBEAT_TIMEOUT_S`` (default 120), ``GUANJIA_FLEET_RULES`` (an extra fleet rule file).
The reconnect grace of inhibition (one incident, one ticket) is the policy's ``inhibition.grace``
(default 3 min; see ``docs/workorders.md``).
"""

from __future__ import annotations

from datetime import timedelta

from cloud.ops.alarms.offline import OfflineWatchdog
from cloud.ops.alarms.processor import AlarmProcessor
from cloud.ops.delivery.email import SmtpConfig
from cloud.ops.delivery.sender import NotificationSender
from cloud.ops.delivery.sms import SmsConfig
from cloud.ops.escalation import EscalationTicker
from cloud.ops.fleet.dispatcher import components as fleet_components
from cloud.ops.fleet.rollout import components as rollout_components
from cloud.ops.fleetrules.runner import FleetRulesComponent
from cloud.ops.model.policy import context_policy
from cloud.runtime.context import Component, ServiceContext


def components(ctx: ServiceContext) -> list[Component]:
    policy, clock, config = context_policy(ctx), ctx.clock, ctx.config
    return [
        AlarmProcessor(policy, clock),
        OfflineWatchdog(policy, clock, heartbeat_timeout=timedelta(seconds=config.heartbeat_timeout_s)),
        EscalationTicker(policy, clock),
        NotificationSender(policy, smtp=SmtpConfig.parse(config.smtp_url) if config.smtp_url else None,
                           sms=SmsConfig.parse(config.sms_url) if config.sms_url else None, clock=clock),
        FleetRulesComponent(policy, clock, extra_rules=list(config.fleet_rules)),
        *fleet_components(ctx),
        *rollout_components(ctx),
    ]
