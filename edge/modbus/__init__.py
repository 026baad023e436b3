"""Modbus acquisition: the request planner, one shared connection per link, per-device pollers."""
