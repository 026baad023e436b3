"""``guanjia stack``: the private PostgreSQL and Mosquitto of this checkout."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.console import Console

from guanjia.settings import Settings
from guanjia.stack.local import LocalStack

app = typer.Typer(help="Start, stop and inspect the local PostgreSQL and Mosquitto.", no_args_is_help=True)
out = Console()


def local_stack() -> LocalStack:
    return LocalStack(Settings(mode="demo").run_dir)


@app.command()
def up() -> None:
    """Start the services (reusing their data), then print the environment to use them."""
    for key, value in local_stack().up().items():
        out.print(f"{key}={shlex.quote(value)}", markup=False, highlight=False)


@app.command()
def down() -> None:
    """Stop the services; their data stays under the run folder."""
    local_stack().down()


@app.command()
def status() -> None:
    for name, state in local_stack().status().items():
        out.print(f"{name:11} {state}", markup=False, highlight=False)


@app.command()
def env() -> None:
    """Print ``GUANJIA_DATABASE_URL=…`` and ``GUANJIA_MQTT_URL=…`` for ``eval "$(guanjia stack env)"``."""
    for key, value in local_stack().env().items():
        print(f"export {key}={shlex.quote(value)}")


def run_dir() -> Path:
    return local_stack().run_dir
