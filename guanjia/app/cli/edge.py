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
    """Validate the config (and every profile it names) without starting anything."""
    from rich.console import Console

    from edge.runner import prepare

    cfg = prepare(config, inventory)
    from edge.agent import Agent

    agent = Agent(cfg)
    Console().print(f"ok: {len(agent.devices)} Modbus devices on {len(agent.links)} links, "
                    f"{len(agent.listener.devices)} MQTT devices, "
                    f"{sum(d.request_count for d in agent.devices.values())} requests per full scan")


@app.command("probe")
def probe(
    target: str = typer.Argument(..., help="HOST[:PORT] of a Modbus TCP device or converter (port 502)."),
    unit: int = typer.Option(1, "--unit", "-u", help="Unit id (slave address)."),
    address: int = typer.Option(..., "--address", "-a", help="Register address as printed in the manual."),
    count: int = typer.Option(2, "--count", "-n", min=1, max=120, help="Registers to dump."),
    table: str = typer.Option("holding", "--table", "-t", help="holding | input"),
    timeout: float = typer.Option(2.0, help="Seconds per request."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Read a range and decode it in all 4 byte/word orders, 0- and 1-based, side by side."""
    import asyncio

    from rich.console import Console
    from rich.table import Table

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
