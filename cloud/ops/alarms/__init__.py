"""Alarms: one lifecycle for edge-rule, fleet-rule and system (offline, notification failure)
alarms — identity (device, rule), raise/update/clear, acknowledge, severity changes, flapping
damping — and the hand-over to work orders."""
