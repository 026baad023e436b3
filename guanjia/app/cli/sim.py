"""``guanjia sim run|faults``: serve a simulated community (Modbus devices, MQTT gates, faults).

The MQTT URL for the gates is, in order: ``--mqtt-url``, ``GUANJIA_DEVICES_MQTT_URL``, the local
stack's ``devices`` account (``guanjia stack up``), then ``GUANJIA_MQTT_URL``. Ctrl-C or SIGTERM
stops everything cleanly (active faults get their end label line).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from guanjia.app.cli import options

if TYPE_CHECKING:
    from simulators import SimulatedFleet

app = typer.Typer(help="Device simulators.", no_args_is_help=True)


def _mqtt_url(explicit: str | None, community: str, needed: bool = True) -> str | None:
    if explicit:
        return explicit
    if url := os.environ.get("GUANJIA_DEVICES_MQTT_URL"):
        return url
    run_dir = options.run_dir(None)
    if (run_dir / "stack.json").exists() and not os.environ.get("GUANJIA_MQTT_URL"):
        from guanjia.app.stack.local import LocalStack

        stack = LocalStack(run_dir)
        broker = stack.broker()
        if broker.running():  # the community's own device account (devices/{community}/# only)
            return broker.url_for(stack.devices_account(community))
    url = os.environ.get("GUANJIA_MQTT_URL")
    if url and needed:
        typer.echo(f"note: gates publish with GUANJIA_MQTT_URL's account; it needs write access to "
                   f"devices/{community}/# (set GUANJIA_DEVICES_MQTT_URL or --mqtt-url for a device account)", err=True)
    return url


def _write_json_atomically(path: Path, data: object) -> None:
    """Atomic and private (0600): the inventory carries the simulated ISAPI controllers' logins."""
    import orjson

    from guanjia.core.files import write_private

    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))


def _summary(fleet: SimulatedFleet) -> None:
    kinds: dict[str, int] = {}
    for handle in fleet.devices.values():
        kinds[handle.kind] = kinds.get(handle.kind, 0) + 1
    typer.echo(f"community {fleet.spec.community}: " + ", ".join(f"{n} {k}s" for k, n in sorted(kinds.items()))
               + f"; speed ×{fleet.clock.speed:g}")
    for port in fleet.ports[:10]:
        units = sorted(port.devices)
        typer.echo(f"  modbus tcp://{port.host}:{port.port}  units {units[0]}..{units[-1]} ({len(units)} devices)")
    if len(fleet.ports) > 10:
        typer.echo(f"  … {len(fleet.ports) - 10} more Modbus ports (see the inventory)")
    for bus in fleet.buses:
        typer.echo(f"  {bus.protocol} meter bus tcp://{bus.host}:{bus.port}  ({len(bus.meters)} meters)")
    controllers = [h for h in fleet.devices.values() if h.isapi is not None]
    for handle in controllers[:10]:
        typer.echo(f"  isapi http://{handle.host}:{handle.port}  {handle.spec.id} (alert stream, digest auth)")
    if fleet.publisher is not None:
        typer.echo(f"  gates publish to mqtt://{fleet.publisher.url.host}:{fleet.publisher.url.port}"
                   f" as {fleet.publisher.url.username}")
    if fleet.control_url:
        typer.echo(f"  control endpoint {fleet.control_url}  (curl {fleet.control_url}/faults)")


@app.command("run")
def run(
    fleet_file: Path | None = typer.Option(None, "--fleet", help="Fleet YAML (devices, profiles, unit ids)."),
    devices: int | None = typer.Option(None, "--devices", "-n", help="Generate a community of N devices."),
    community: str = typer.Option("demo", help="Community id of a generated fleet."),
    field_devices: bool = typer.Option(
        False, "--field-devices", help="Generated fleet: lift IoT boxes and ISAPI gate controllers instead of the "
        "synthetic Modbus lift and MQTT gate."),
    layout: str | None = typer.Option(None, help="shared (one port per converter) or per-device."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    advertise_host: str | None = typer.Option(
        None, help="Host name written in the inventory (e.g. a container name) when it differs from --host."),
    base_port: int | None = typer.Option(None, help="First TCP port (default: free ports)."),
    mqtt_url: str | None = typer.Option(None, help="Broker for the MQTT gates (see the module help)."),
    inventory: Path | None = typer.Option(None, help="Write the inventory JSON here."),
    control_port: int = typer.Option(0, help="HTTP control endpoint port (0: a free port, -1: none)."),
    labels: Path | None = typer.Option(None, help="Append fault ground-truth labels (JSONL) here."),
    scenario: Path | None = typer.Option(None, help="Scenario YAML: faults to inject at given times."),
    speed: float = typer.Option(1.0, help="Time acceleration: simulated seconds per wall second."),
    seed: int = typer.Option(0, help="Random seed (same seed, same physics)."),
    device_clock: str = typer.Option("wall", help="Device clocks follow 'wall' time or the 'sim' clock."),
    duration: float | None = typer.Option(None, help="Stop after this many wall seconds."),
    serial_meters: bool = typer.Option(
        False, "--serial-meters",
        help="Generated fleet: add DL/T 645 sub-meters per building and a CJ/T 188 water meter."),
    call_buttons: bool = typer.Option(
        False, "--call-buttons", help="Generated fleet: add two one-key call buttons (MQTT) per building."),
) -> None:
    """Serve simulated devices until Ctrl-C."""
    import asyncio
    import signal

    from device_profiles import find_profile
    from guanjia.core.errors import ConfigError, ConfigIssue
    from simulators import SimulatedFleet, generate_fleet, load_fleet, load_scenario

    if (fleet_file is None) == (devices is None):
        raise ConfigError([ConfigIssue("command line", None, "--fleet/--devices", "give exactly one of them")])
    if field_devices and fleet_file is not None:
        raise ConfigError([ConfigIssue("command line", None, "--field-devices",
                                       "only for a generated fleet (--devices); a fleet file names its profiles")])
    if layout not in (None, "shared", "per-device"):
        raise ConfigError([ConfigIssue("command line", None, "--layout", "must be shared or per-device")])
    if device_clock not in ("wall", "sim"):
        raise ConfigError([ConfigIssue("command line", None, "--device-clock", "must be wall or sim")])
    if speed <= 0:
        raise ConfigError([ConfigIssue("command line", None, "--speed", "must be > 0")])
    import logging

    logging.getLogger("pymodbus.logging").setLevel(logging.WARNING)  # "Server listening" per port is noise
    spec = load_fleet(fleet_file) if fleet_file is not None else generate_fleet(
        devices or 0, community, serial_meters=serial_meters, field_devices=field_devices, call_buttons=call_buttons)
    plan = load_scenario(scenario, spec) if scenario is not None else None
    has_gates = any(find_profile(d.profile).transport == "mqtt" for d in spec.devices)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with SimulatedFleet(
            spec, layout=layout, host=host, base_port=base_port, speed=speed, seed=seed,  # type: ignore[arg-type]
            mqtt_url=_mqtt_url(mqtt_url, spec.community, needed=has_gates), labels_path=labels, scenario=plan,
            control_port=None if control_port < 0 else control_port, device_clock=device_clock,  # type: ignore[arg-type]
        ) as fleet:
            if inventory is not None:
                doc = fleet.inventory
                if advertise_host:
                    for entry in doc["devices"]:
                        if "host" in entry:
                            entry["host"] = advertise_host
                _write_json_atomically(inventory, doc)
                typer.echo(f"inventory written to {inventory}")
            _summary(fleet)
            try:
                async with asyncio.timeout(duration):
                    await stop.wait()
            except TimeoutError:
                pass
            typer.echo("stopping simulators…")

    asyncio.run(main())


@app.command("faults")
def faults() -> None:
    """List the faults each device kind accepts (for --scenario and the control endpoint)."""
    from simulators.physics import COMM_FAULTS, FAULTS_BY_KIND

    for kind, names in FAULTS_BY_KIND.items():
        comm = {"offline"} if kind == "gate" else set(COMM_FAULTS)
        typer.echo(f"{kind:<9} {', '.join(sorted(names))}  | comm: {', '.join(sorted(comm))}")
