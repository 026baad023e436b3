"""Serial meter buses in the edge: the DL/T 645-2007 and CJ/T 188 masters.

``link`` is one bus (a transparent RS-485 converter or a serial port) with one lock, deadlines,
retries and reconnect backoff like :mod:`edge.modbus.link`; ``poller`` reads each meter's data
identifiers on the same absolute, phase-spread schedule as the Modbus pollers; ``buses`` builds
them from the agent config and runs them for the agent. The frame codecs are the shared ones in
:mod:`device_profiles.protocols`.
"""
