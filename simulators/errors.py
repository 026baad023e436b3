"""Errors of the simulators (a :class:`~guanjia.core.errors.GuanjiaError` subtree).

Fleet and scenario *files* that are wrong raise :class:`~guanjia.core.errors.ConfigError` (file:line:
field: message); :class:`SimulatorError` is for requests that make no sense at run time (a fault
injected into a device that does not exist, a fault the device kind cannot have).
"""

from __future__ import annotations

from guanjia.core.errors import GuanjiaError


class SimulatorError(GuanjiaError):
    """A simulator request is impossible (unknown device or fault, port in use…)."""
