"""Device simulators: physics, a Modbus server fleet, MQTT gates, fault injection with labels.

::

    from simulators import SimulatedFleet, generate_fleet, load_fleet
    async with SimulatedFleet(generate_fleet(50), speed=60, mqtt_url=url) as fleet:
        fleet.inventory
        fleet.inject("b1-lift-1", "passengers_trapped", duration_s=900)

``guanjia sim run`` is the command-line front end; docs/simulators.md describes the fleet and
scenario files, the faults and the HTTP control endpoint.
"""

from simulators.errors import SimulatorError
from simulators.faults import ALL_FAULTS, faults_for
from simulators.fleet import DeviceSpec, FleetSpec, generate_fleet, load_fleet
from simulators.runner import SimulatedFleet
from simulators.scenario import Scenario, ScenarioFault, load_scenario

__all__ = [
    "ALL_FAULTS",
    "DeviceSpec",
    "FleetSpec",
    "Scenario",
    "ScenarioFault",
    "SimulatedFleet",
    "SimulatorError",
    "faults_for",
    "generate_fleet",
    "load_fleet",
    "load_scenario",
]
