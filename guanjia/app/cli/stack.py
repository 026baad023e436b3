"""``guanjia stack``: the private PostgreSQL and Mosquitto of this checkout."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.console import Console

from guanjia.app.stack.local import LocalStack
from guanjia.core.settings import Settings

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


@app.command("broker-files")
def broker_files(
    out_dir: Path = typer.Option(..., "--out", help="Folder for mosquitto.conf, passwd and acl."),
    listener_port: int = typer.Option(1883, "--port"),
    gateway_secret: Path | None = typer.Option(
        None, help="Also write the gateway's password here (a volume only the edge agent mounts)."),
    broker_uid: int = typer.Option(1883, help="Owner of the password file when run as root (the broker "
                                              "image's user; eclipse-mosquitto runs as 1883)."),
    secret_owner: str = typer.Option("guanjia", help="Owner of --gateway-secret when run as root (the "
                                                     "agent image's user)."),
) -> None:
    """Write a production broker's config, hashed password file and ACL from the environment.

    Reads MQTT_CLOUD_PASSWORD, MQTT_DEVICES_PASSWORD, MQTT_GATEWAY_PASSWORD, GUANJIA_COMMUNITY and
    GUANJIA_GATEWAY (used by docker-compose's one-shot ``broker-auth`` service). Empty passwords
    are refused: a broker must never come up with guessable credentials.
    """
    import os

    from guanjia.app.stack.local import broker_accounts_from_env
    from guanjia.app.stack.mosquitto import write_auth_files
    from guanjia.core.errors import ConfigError, ConfigIssue

    env = {k: os.environ.get(k, "") for k in (
        "MQTT_CLOUD_PASSWORD", "MQTT_DEVICES_PASSWORD", "MQTT_GATEWAY_PASSWORD",
        "GUANJIA_COMMUNITY", "GUANJIA_GATEWAY")}
    missing = [k for k, v in env.items() if len(v) < (12 if "PASSWORD" in k else 1)]
    if missing:
        raise ConfigError([ConfigIssue("environment", None, k, "required (passwords: at least 12 characters)")
                           for k in missing])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_auth_files(out_dir / "passwd", out_dir / "acl", broker_accounts_from_env(env))
    (out_dir / "mosquitto.conf").write_text(
        "\n".join([
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {out_dir / 'passwd'}",
            f"acl_file {out_dir / 'acl'}",
            f"listener {listener_port} 0.0.0.0",
            "persistence true",
            "persistence_location /mosquitto/data/",
            "max_inflight_messages 1000",
            "max_queued_messages 2000000",
            "max_packet_size 2097152",
            "log_dest stdout",
        ]) + "\n"
    )
    for name in ("acl", "mosquitto.conf"):
        os.chmod(out_dir / name, 0o644)  # no secret in these; the broker image runs as its own user
    # the password hashes stay 0600 (created so by write_auth_files) and are handed to the
    # broker's user instead of being opened to everyone
    if os.geteuid() == 0:
        os.chown(out_dir / "passwd", broker_uid, broker_uid)
    if gateway_secret is not None:
        from guanjia.core.files import write_private

        gateway_secret.parent.mkdir(parents=True, exist_ok=True)
        write_private(gateway_secret, env["MQTT_GATEWAY_PASSWORD"] + "\n")  # born 0600
        if os.geteuid() == 0:
            import pwd

            try:
                owner = pwd.getpwnam(secret_owner)
            except KeyError:
                owner = None  # this machine has no such user: keep root's 0600 file
            if owner is not None:
                os.chown(gateway_secret, owner.pw_uid, owner.pw_gid)
    out.print(f"wrote {out_dir}/mosquitto.conf, passwd, acl", markup=False, highlight=False)
