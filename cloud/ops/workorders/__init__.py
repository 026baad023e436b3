"""Repair work orders (工单): state machine, SLA policy, repository, resident reports, ratings.

A work order is opened automatically from an alarm whose rule says ``work_order: true``, by a
resident's report (报事报修) or by staff. Every transition is recorded in ``work_order_trail``.
See ``docs/workorders.md`` for the lifecycle diagram and the SLA defaults with their sources.
"""
