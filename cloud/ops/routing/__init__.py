"""Routing: community → building → the butler on duty with the skill for the device kind, scored
by star level and open load; escalation of unaccepted or overdue work along the chain."""
