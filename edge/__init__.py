"""The guanjia edge agent: Modbus/MQTT acquisition, local rules, durable store-and-forward uplink.

Layout (by layer, as in pymodbus): ``config`` (the YAML model), ``modbus/`` (planner, link, poller),
``mqtt_devices`` (gates), ``rbe`` (report by exception), ``rules_runner`` (the shared rule engine on
the edge), ``outbox`` (SQLite WAL queue), ``uplink`` (MQTT to the cloud), ``commands`` (cloud writes),
``agent`` (wires it all in one TaskGroup), ``probe`` (commissioning tool). See ``docs/edge.md``.
"""
