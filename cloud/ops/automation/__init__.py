"""Automation: what the cloud does by itself when a rule says so (issue 19, "commands raised by rules").

Today one thing: a rule's ``command:`` (:class:`rules.model.RuleCommand`, e.g. reset a pump's drive
fault once, open a gate on an alarm) is sent when its alarm is raised, through the same path as an
engineer's command (:func:`cloud.ops.fleet.commands.submit`: checked against the profile, queued,
audited in ``device_commands`` with ``rule:<id>`` as the sender, sent by the dispatcher with an
expiry). A layer of its own above fleet and alarms because it joins the two, which are independent.

* :mod:`.repo` — the alarms whose rule wants a command and that have none yet;
* :mod:`.rule_commands` — the ``rule-commands`` component.
"""
