"""The command line's shared options, defined once, and the one resolver of service URLs.

Why one module: every command that reaches the database (``cloud``, ``cloud user``, ``cloud wo``,
``cloud analytics`` …) takes the same ``--database-url`` / ``GUANJIA_DATABASE_URL``; when each
file defined its own, the help texts drifted and three resolvers behaved differently (one fell
back to the local stack, two did not). Here the option objects are built once and
:func:`resolve_url` is the only way a command turns "the flag, the variable, or the local stack"
into a URL:

1. the flag (typer already folds the environment variable into it: ``envvar=``);
2. else the local stack of this checkout (``guanjia stack up``: ``--run-dir`` /
   ``GUANJIA_RUN_DIR`` / ``.run``), when it is up;
3. else a :class:`~guanjia.core.errors.ConfigError` naming the variable.

Typer ``Option`` objects are plain defaults and may be shared by several commands.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

DATABASE_URL = "GUANJIA_DATABASE_URL"
MQTT_URL = "GUANJIA_MQTT_URL"

DbOption = typer.Option(None, "--database-url", envvar=DATABASE_URL, help="PostgreSQL/TimescaleDB URL.")
MqttOption = typer.Option(None, "--mqtt-url", envvar=MQTT_URL, help="Broker URL of the cloud account.")
RunDirOption = typer.Option(None, "--run-dir", help="Local stack folder (default: GUANJIA_RUN_DIR or .run).")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")


def run_dir(value: Path | None) -> Path:
    """The local stack folder: ``--run-dir``, else ``GUANJIA_RUN_DIR``, else ``.run``."""
    return value or Path(os.environ.get("GUANJIA_RUN_DIR", ".run"))


def resolve_url(value: str | None, var: str, run_dir_: Path | None = None) -> str:
    """``value`` (the flag or its variable), else the local stack's, else a config error (see above)."""
    from guanjia.app.stack.local import LocalStack
    from guanjia.core.errors import ConfigError, ConfigIssue

    if value:
        return value
    env = LocalStack(run_dir(run_dir_)).env()
    if var in env:
        return env[var]
    raise ConfigError([ConfigIssue("environment", None, var, "not set, and no local stack is up "
                                   "(run `guanjia stack up` or set the variable)")])


def database_url(value: str | None, run_dir_: Path | None = None) -> str:
    """:func:`resolve_url` of ``GUANJIA_DATABASE_URL``."""
    return resolve_url(value, DATABASE_URL, run_dir_)
