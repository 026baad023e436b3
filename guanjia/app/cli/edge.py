"""``guanjia edge``: run the agent, probe a Modbus device, inspect the outbox."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Edge agent: run, probe, outbox.", no_args_is_help=True)
outbox_app = typer.Typer(help="Inspect the agent's durable outbox.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")


@app.command("run")
def run(
    config: Path = typer.Option(..., "--config", "-c", help="Agent YAML (see edge/examples/agent.yaml)."),
    inventory: Path | None = typer.Option(None, "--inventory", help="Add devices from a simulator inventory JSON."),
    loop: str = typer.Option("auto", "--loop", help="auto (uvloop when installed) | uvloop | asyncio"),
) -> None:
    """Run the agent until SIGINT/SIGTERM (clean shutdown: outbox committed, rule state saved)."""
    from edge.runner import run as run_edge

    if loop not in ("auto", "uvloop", "asyncio"):
        raise typer.BadParameter("--loop must be auto, uvloop or asyncio")
    run_edge(config, inventory, loop)


@app.command("enroll")
def enroll(
    cloud: str = typer.Option(..., "--cloud", help="The cloud's base URL (https://guanjia.example.com)."),
    token: str = typer.Option(..., "--token", help="The one-time bootstrap token an admin issued for this gateway."),
    config: Path = typer.Option(..., "--config", "-c", help="Agent YAML to write (created, or updated in place)."),
) -> None:
    """Spend a bootstrap token: write this gateway's identity and broker credentials into its config."""
    import asyncio

    from edge.enroll import fetch_enrolment, write_enrolment

    enrolment = asyncio.run(fetch_enrolment(cloud, token))
    password_file = write_enrolment(config, enrolment)
    typer.echo(f"enrolled as {enrolment.community}/{enrolment.gateway} ({enrolment.username}); "
               f"broker {enrolment.mqtt_url}; password in {password_file}")


@app.command("check")
def check(
    config: Path = typer.Option(..., "--config", "-c", help="Agent YAML."),
    inventory: Path | None = typer.Option(None, "--inventory"),
) -> None:
    """Validate the config (and every profile it names) without starting anything; with a version
    pushed by the cloud on this box, that version too (the same validators the cloud runs)."""
    from rich.console import Console

    from edge.managed import effective_config
    from edge.runner import prepare

    cfg, _state = effective_config(prepare(config, inventory), strict=True)
    from edge.agent import Agent

    agent = Agent(cfg)
    Console().print(f"ok: {len(agent.devices)} Modbus devices on {len(agent.links)} links, "
                    f"{len(agent.meter_buses.meters)} meters on {len(agent.meter_buses.links)} buses, "
                    f"{len(agent.listener.devices)} MQTT devices, {len(agent.isapi.devices)} ISAPI controllers, "
                    f"{sum(d.request_count for d in agent.devices.values())} requests per full scan")


@app.command("probe")
def probe(
    target: str = typer.Argument(..., help="HOST[:PORT] of a Modbus TCP device or converter (port 502), or of a "
                                           "transparent RS-485 converter (meters, port 8899), or a serial port /dev/…"),
    protocol: str = typer.Option("modbus", "--protocol", "-p", help="modbus | dlt645 | cjt188"),
    unit: int = typer.Option(1, "--unit", "-u", help="Modbus: unit id (slave address)."),
    address: int | None = typer.Option(None, "--address", "-a", help="Modbus: register address as in the manual."),
    count: int = typer.Option(2, "--count", "-n", min=1, max=120, help="Modbus: registers to dump."),
    table: str = typer.Option("holding", "--table", "-t", help="Modbus: holding | input"),
    meter: str | None = typer.Option(
        None, "--meter", "-m", help="Meters: the meter address (default: ask by broadcast; a lone meter answers)."),
    di: str | None = typer.Option(None, "--di", help="DL/T 645: data identifier to read, e.g. 02010100 "
                                                     "(default 00010000, forward active energy)."),
    baudrate: int = typer.Option(2400, "--baudrate", help="Meters on a serial port: baud rate."),
    parity: str = typer.Option("E", "--parity", help="Meters on a serial port: N | E | O."),
    timeout: float = typer.Option(2.0, help="Seconds per request."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Modbus: read a range and decode it in all 4 byte/word orders, 0- and 1-based, side by side.
    DL/T 645 / CJ/T 188: find the meter's address by broadcast and read one identifier, showing the
    bytes on the wire and the decoded value."""
    import asyncio

    from rich.console import Console
    from rich.table import Table

    if protocol in ("dlt645", "cjt188"):
        _probe_meter(target, protocol, meter, di, baudrate, parity, timeout, as_json)
        return
    if protocol != "modbus":
        raise typer.BadParameter("--protocol must be modbus, dlt645 or cjt188")
    if address is None:
        raise typer.BadParameter("a Modbus probe needs --address")

    from edge.probe import interpretations, register_rows
    from edge.probe import probe as do_probe

    tables = {"holding": "holding_register", "input": "input_register"}
    if table not in tables:
        raise typer.BadParameter("--table must be holding or input")
    host, _, port = target.partition(":")
    result = asyncio.run(do_probe(host, int(port or 502), unit=unit, address=address, count=count,
                                  table=tables[table], timeout_s=timeout))
    rows = interpretations(result)
    if as_json:
        typer.echo(json.dumps({"start": result.start, "registers": result.registers,
                               "interpretations": [{"as": a, "zero_based": z, "one_based": o} for a, z, o in rows]}))
        return
    console = Console()
    dump = Table(title=f"unit {unit} {table} registers {result.start}..{result.start + len(result.registers) - 1}")
    for name in ("PDU (0-based)", "1-based", "hex", "uint16", "int16"):
        dump.add_column(name, justify="right")
    for row in register_rows(result):
        dump.add_row(*row)
    console.print(dump)
    decoded = Table(title=f"address {address} decoded")
    decoded.add_column("as")
    decoded.add_column(f"0-based: PDU {address}", justify="right")
    decoded.add_column(f"1-based: PDU {address - 1}", justify="right")
    for interp in rows:
        decoded.add_row(*interp)
    console.print(decoded)


def _probe_meter(target: str, protocol: str, meter: str | None, di: str | None, baudrate: int, parity: str,
                 timeout: float, as_json: bool) -> None:
    import asyncio

    from rich.console import Console
    from rich.table import Table

    from edge.serialbus.probe import link_config, probe_meter

    if parity not in ("N", "E", "O"):
        raise typer.BadParameter("--parity must be N, E or O")
    config = link_config(protocol, target, baudrate=baudrate, parity=parity, timeout_s=timeout)
    result = asyncio.run(probe_meter(config, address=meter, di=di))
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        console = Console()
        wire = Table(title=f"{protocol} 表地址 / meter address: {result.address or '?'}")
        for name in ("请求 / request", "发送 / sent", "应答 / reply"):
            wire.add_column(name)
        for exchange in result.exchanges:
            wire.add_row(exchange.what, exchange.request.hex(" "), exchange.error or exchange.reply.hex(" "))
        console.print(wire)
        if result.values:
            values = Table(title="解码 / decoded")
            for name in ("数据项 / item", "值 / value", "单位 / unit"):
                values.add_column(name)
            for row in result.values:
                values.add_row(*row)
            console.print(values)
    if any(e.error for e in result.exchanges):
        raise typer.Exit(1)


@app.command("isapi-probe")
def isapi_probe(
    url: str = typer.Argument(..., help="http://HOST[:PORT] of the access controller."),
    profile: str = typer.Option("hikvision-isapi-acs", "--profile", "-p", help="Profile id or file to decode with."),
    username: str = typer.Option("admin", "--username", "-u"),
    password_file: Path | None = typer.Option(
        None, "--password-file", help="File holding the password (asked for when not given; not on the command line)."),
    parts: int = typer.Option(5, "--parts", "-n", min=1, max=1000, help="Stop after this many parts."),
    timeout: float = typer.Option(30.0, help="Stop after this many seconds."),
) -> None:
    """Open a controller's alert stream (digest auth) and print its first parts as JSON lines: the raw
    part and what the profile makes of it (mapped event, heartbeat, unknown type, garbage)."""
    import asyncio

    from device_profiles import find_profile
    from edge.isapi import probe_stream

    found = find_profile(profile)
    if found.isapi is None:
        raise typer.BadParameter(f"{found.id} is not an ISAPI profile (transport {found.transport})")
    if password_file is not None:
        password = password_file.read_text(encoding="utf-8").strip()
    else:
        password = typer.prompt(f"password of {username}", hide_input=True)
    for record in asyncio.run(probe_stream(url.rstrip("/") + found.isapi.path, username, password, found,
                                           parts=parts, timeout_s=timeout)):
        typer.echo(json.dumps(record, ensure_ascii=False, default=str))


@outbox_app.command("stats")
def outbox_stats(
    config: Path | None = typer.Option(None, "--config", "-c", help="Agent YAML (uses its outbox path)."),
    path: Path | None = typer.Option(None, "--path", help="Outbox file."),
) -> None:
    """Queue depth per kind, bytes, dropped counts, rejects and audit rows (read-only; safe while running)."""
    from edge.outbox import read_stats

    if path is None:
        if config is None:
            raise typer.BadParameter("give --config or --path")
        from edge.config import load_config

        path = load_config(config).outbox.path
    typer.echo(json.dumps(read_stats(path), indent=2))
