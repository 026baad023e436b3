"""``guanjia cloud``: migrate, serve, ingest, and the registry (gateways, buildings, devices).

Where the services are: ``GUANJIA_DATABASE_URL`` / ``GUANJIA_MQTT_URL`` (or ``--database-url`` /
``--mqtt-url``); when unset, the local stack of this checkout (``guanjia stack up``) is used.
Heavy imports happen inside the commands so ``guanjia --help`` stays fast.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import typer
from rich.console import Console

from guanjia.app.cli import cloud_analytics, cloud_users, cloud_workorders, options
from guanjia.app.cli.options import DbOption, JsonOption, MqttOption, RunDirOption

app = typer.Typer(help="cloud: storage, ingest service, API, registry.", no_args_is_help=True)
gateway_app = typer.Typer(help="gateways: provision (registry row + broker account) and list.", no_args_is_help=True)
device_app = typer.Typer(help="devices of a community.", no_args_is_help=True)
building_app = typer.Typer(help="buildings of a community.", no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")
app.add_typer(device_app, name="device")
app.add_typer(building_app, name="building")
app.add_typer(cloud_users.app, name="user")
app.add_typer(cloud_analytics.app, name="analytics")
app.add_typer(cloud_workorders.app, name="wo")

out = Console()


@app.command()
def migrate(
    database_url: str | None = DbOption,
    plain: bool = typer.Option(False, "--plain", help="Do not try TimescaleDB even when it is installed."),
    run_dir: Path | None = RunDirOption,
) -> None:
    """Apply pending migrations (TimescaleDB when available, else plain PostgreSQL partitions)."""
    from cloud.db.migrate import migrate as run_migrations
    from cloud.db.migrate import schema_version, storage_mode
    from cloud.db.pool import connect

    url = options.database_url(database_url, run_dir)
    applied = run_migrations(url, prefer_timescale=not plain)
    with connect(url) as conn:
        mode, version = storage_mode(conn), schema_version(conn)
    out.print(f"storage: {mode}; applied {len(applied)} migration(s); schema version {version}",
              markup=False, highlight=False)


SEQ_WINDOW_DEFAULT = 10_000_000
"""Same as :data:`cloud.ingest.prepare.SEQ_WINDOW` (not imported here: the CLI loads the cloud lazily)."""
RECEIVE_MAXIMUM_DEFAULT = 4000
"""Same as :data:`cloud.ingest.worker.RECEIVE_MAXIMUM` (not imported: the CLI loads the cloud lazily)."""
BATCH_POINTS_DEFAULT = 150_000
"""Same as :data:`cloud.ingest.worker.BATCH_POINTS`."""
SeqWindowOption = typer.Option(
    SEQ_WINDOW_DEFAULT, "--seq-window", min=1,
    help="Trust a batch's seq at most this far above its outbox incarnation's high-water mark; beyond it the "
         "batch is quarantined (seq_out_of_window) and not confirmed until a resend falls inside (docs/wire.md).")


def _service(database_url: str | None, mqtt_url: str | None, run_dir: Path | None, *, workers: int, api: bool,
             api_host: str, api_port: int, group: str, client_id_prefix: str | None, ingest_only: bool,
             receive_maximum: int, batch_points: int, seq_window: int = SEQ_WINDOW_DEFAULT,
             needs_secret: bool = True, metrics_host: str = "127.0.0.1", metrics_port: int = 0,
             processes: int | None = 1) -> None:
    import asyncio
    import secrets

    from cloud.components import COMPONENTS, INGEST_ONLY
    from cloud.runtime.context import CloudConfig
    from cloud.service import CloudService
    from edge.bundle import check_bundle
    from guanjia.app.supervise import auto_processes
    from guanjia.core.clock import SystemClock
    from guanjia.core.settings import Settings

    db = options.database_url(database_url, run_dir)
    broker = options.resolve_url(mqtt_url, options.MQTT_URL, run_dir) if workers > 0 else mqtt_url
    # ingest-only processes sign nothing; do not make operators invent a secret for them
    secret = None if needs_secret or os.environ.get("GUANJIA_SECRET_KEY") else secrets.token_urlsafe(48)
    settings = (Settings(database_url=db, mqtt_url=broker, secret_key=secret) if secret
                else Settings(database_url=db, mqtt_url=broker))
    # settings are read once, here: the components get this typed config, not the environment
    config = CloudConfig.from_settings(
        settings, workers=workers, api=api, api_host=api_host, api_port=api_port, group=group,
        pool_size=max(4, 2 * workers + 4), client_id_prefix=client_id_prefix, receive_maximum=receive_maximum,
        batch_points=batch_points, seq_window=seq_window, metrics_host=metrics_host, metrics_port=metrics_port)
    factories = INGEST_ONLY if ingest_only else COMPONENTS
    count = auto_processes(settings.ingest_processes if processes is None else processes)
    if ingest_only and count > 1:
        raise typer.Exit(_supervise_ingest(count, db, broker, workers=workers, group=group,
                                           client_id_prefix=client_id_prefix, receive_maximum=receive_maximum,
                                           batch_points=batch_points, seq_window=seq_window,
                                           metrics_host=metrics_host, metrics_port=metrics_port))

    async def main() -> None:
        # wall time enters the cloud here: one clock for every component, the API and the pages
        # the edge's own bundle validator (``guanjia edge check``), injected: the cloud may not import the edge
        async with CloudService(settings, config, components=factories, clock=SystemClock(),
                                edge_config=check_bundle) as service:
            await service.wait()
            _exit_after_grace()

    asyncio.run(main())


def _supervise_ingest(count: int, db: str, broker: str | None, *, workers: int, group: str,
                      client_id_prefix: str | None, receive_maximum: int, batch_points: int, seq_window: int,
                      metrics_host: str, metrics_port: int) -> int:
    """``count`` ingest processes (:mod:`guanjia.app.supervise`): the same options, ``--processes 1``,
    a client-id prefix and a metrics port per slot."""
    import socket
    import sys

    from guanjia.app.supervise import supervise

    prefix = client_id_prefix or f"guanjia-ingest-{socket.gethostname()[:40]}"

    def command(slot: int) -> list[str]:
        return [sys.executable, "-m", "guanjia.app.cli.main", "cloud", "ingest", "--processes", "1",
                "--workers", str(workers), "--group", group, "--client-id-prefix", f"{prefix}-p{slot}",
                "--receive-maximum", str(receive_maximum), "--batch-points", str(batch_points),
                "--seq-window", str(seq_window), "--metrics-host", metrics_host,
                "--metrics-port", str(metrics_port + slot if metrics_port else 0)]

    env = {**os.environ, "GUANJIA_DATABASE_URL": db}
    if broker:
        env["GUANJIA_MQTT_URL"] = broker
    return supervise(command, count, env)


STOP_GRACE_S = 15.0
"""How long a requested stop may take before the process exits anyway (after ``CloudService``
has named what is still running, at 10 s)."""


def _exit_after_grace() -> None:
    """Arm a hard deadline for the stop that was just requested.

    Components are cancelled and must end promptly; what they hold when cancelled is already safe
    (ingest acknowledges a message only after its COMMIT, so an unacknowledged one is redelivered).
    A component that does not end — seen about once in three stops right after start-up, with the
    notification sender's LISTEN loop or the command dispatcher's MQTT session still pending, root
    cause not yet found — would otherwise keep the process alive until its supervisor kills it.
    So after :data:`STOP_GRACE_S` the process exits with status 0 (the stop was asked for and
    nothing is lost), having logged the stuck tasks with their stacks."""
    def exit_now() -> None:
        logging.getLogger(__name__).warning("stop took longer than %.0f s; exiting", STOP_GRACE_S)
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(STOP_GRACE_S, exit_now)
    timer.daemon = True
    timer.start()


@app.command()
def serve(
    database_url: str | None = DbOption,
    mqtt_url: str | None = MqttOption,
    workers: int = typer.Option(1, "--workers", min=0, max=64, help="Ingest consumers in this process."),
    no_api: bool = typer.Option(False, "--no-api", help="Do not serve the HTTP API."),
    api_host: str = typer.Option("127.0.0.1", "--api-host"),
    api_port: int = typer.Option(8000, "--api-port"),
    group: str = typer.Option("guanjia-ingest", "--group", help="Shared-subscription group of the workers."),
    client_id_prefix: str | None = typer.Option(None, "--client-id-prefix",
                                                help="MQTT client ids PREFIX-0..N-1 (stable across restarts)."),
    receive_maximum: int = typer.Option(RECEIVE_MAXIMUM_DEFAULT, "--receive-maximum", min=1, max=65535),
    batch_points: int = typer.Option(BATCH_POINTS_DEFAULT, "--batch-points", min=1),
    seq_window: int = SeqWindowOption,
    run_dir: Path | None = RunDirOption,
) -> None:
    """Run the cloud: ingest workers, storage maintenance, rollups, API — one process, one TaskGroup."""
    _service(database_url, mqtt_url, run_dir, workers=workers, api=not no_api, api_host=api_host, api_port=api_port,
             group=group, client_id_prefix=client_id_prefix, ingest_only=False, receive_maximum=receive_maximum,
             batch_points=batch_points, seq_window=seq_window)


@app.command()
def ingest(
    database_url: str | None = DbOption,
    mqtt_url: str | None = MqttOption,
    workers: int = typer.Option(1, "--workers", min=1, max=64),
    group: str = typer.Option("guanjia-ingest", "--group"),
    client_id_prefix: str | None = typer.Option(None, "--client-id-prefix"),
    receive_maximum: int = typer.Option(RECEIVE_MAXIMUM_DEFAULT, "--receive-maximum", min=1, max=65535),
    batch_points: int = typer.Option(BATCH_POINTS_DEFAULT, "--batch-points", min=1),
    seq_window: int = SeqWindowOption,
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host"),
    metrics_port: int = typer.Option(9108, "--metrics-port", min=0, max=65535,
                                     help="Serve GET /metrics (and /healthz) here; 0 = off. Process I of "
                                          "--processes uses PORT + I."),
    processes: int | None = typer.Option(None, "--processes", min=0, max=64,
                                         help="Ingest processes (each its own interpreter); default "
                                              "GUANJIA_INGEST_PROCESSES, 0 = one per CPU core (at most 8)."),
    run_dir: Path | None = RunDirOption,
) -> None:
    """Ingest workers only (scale-out processes beside one `serve`)."""
    _service(database_url, mqtt_url, run_dir, workers=workers, api=False, api_host="", api_port=0, group=group,
             client_id_prefix=client_id_prefix, ingest_only=True,
             receive_maximum=receive_maximum, batch_points=batch_points, seq_window=seq_window, needs_secret=False,
             metrics_host=metrics_host, metrics_port=metrics_port, processes=processes)


# ---------------------------------------------------------------------- gateways
@gateway_app.command("add")
def gateway_add(
    community: str = typer.Argument(..., help="Community id (created when new)."),
    gateway: str = typer.Argument(..., help="Gateway id, unique in the community."),
    trusted: bool = typer.Option(False, "--trusted", help="Trust the gateway (allows auto-registration)."),
    auto_register: bool = typer.Option(False, "--auto-register",
                                       help="Create unknown devices it reports (needs --trusted)."),
    passwd_file: Path | None = typer.Option(None, "--passwd-file", help="Production Mosquitto password file."),
    acl_file: Path | None = typer.Option(None, "--acl-file", help="Production Mosquitto ACL file."),
    broker_pid: int | None = typer.Option(None, "--broker-pid", help="Send SIGHUP to this broker to reload."),
    database_url: str | None = DbOption,
    run_dir: Path | None = RunDirOption,
    as_json: bool = typer.Option(False, "--json", help="Print the credentials as JSON."),
) -> None:
    """Register a gateway and create its broker account (credentials are printed once)."""
    from cloud.registry.provisioning import BrokerFiles, provision_gateway
    from guanjia.app.stack.local import LocalStack
    from guanjia.core.errors import ConfigError, ConfigIssue

    url = options.database_url(database_url, run_dir)
    files = stack = None
    if passwd_file or acl_file:
        if not (passwd_file and acl_file):
            raise ConfigError([ConfigIssue("options", None, "--passwd-file/--acl-file", "give both or neither")])
        files = BrokerFiles(passwd_file, acl_file, broker_pid)
    else:
        stack = LocalStack(options.run_dir(run_dir))
    gateway_id, account = provision_gateway(url, community, gateway, trusted=trusted, auto_register=auto_register,
                                            stack=stack, files=files)
    if stack is not None:
        broker = stack.broker()
        mqtt = broker.url_for(account)
    else:
        mqtt = None
    if as_json:
        out.print(json.dumps({"gateway_id": gateway_id, "community": community, "gateway": gateway,
                              "username": account.username, "password": account.password, "mqtt_url": mqtt}),
                  markup=False, highlight=False, soft_wrap=True)
        return
    out.print(f"gateway {community}/{gateway} registered (id {gateway_id}, trusted={trusted})", markup=False)
    out.print(f"MQTT username: {account.username}", markup=False, highlight=False)
    out.print(f"MQTT password: {account.password}   (shown once; store it in the edge config)", markup=False,
              highlight=False)
    if mqtt:
        out.print(f"MQTT URL:      {mqtt}", markup=False, highlight=False, soft_wrap=True)


@gateway_app.command("list")
def gateway_list(
    community: str | None = typer.Option(None, "--community"),
    database_url: str | None = DbOption,
    run_dir: Path | None = RunDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Gateways with online state, device count, sequence high-water mark and gaps."""
    from rich.table import Table

    from cloud.db.pool import connect
    from cloud.registry.store import as_dict, list_gateways

    url = options.database_url(database_url, run_dir)
    with connect(url) as conn:
        rows = list_gateways(conn, community)
    if as_json:
        out.print(json.dumps([as_dict(r) for r in rows], default=str), markup=False, highlight=False, soft_wrap=True)
        return
    table = Table("community", "gateway", "trusted", "auto", "online", "last seen", "devices", "seq", "gaps")
    for r in rows:
        table.add_row(r.community, r.code, str(r.trusted), r.auto_register, str(r.online),
                      r.last_seen.isoformat(timespec="seconds") if r.last_seen else "-", str(r.devices),
                      "-" if r.high_water is None else str(r.high_water), str(r.gaps))
    out.print(table)


# ---------------------------------------------------------------------- buildings and devices
@building_app.command("add")
def building_add(
    community: str = typer.Argument(...),
    building: str = typer.Argument(...),
    name: str = typer.Option("", "--name"),
    floors: int = typer.Option(1, "--floors", min=1, max=200),
    basement_floors: int = typer.Option(0, "--basement-floors", min=0, max=20),
    lat: float | None = typer.Option(None, "--lat"),
    lon: float | None = typer.Option(None, "--lon"),
    database_url: str | None = DbOption,
    run_dir: Path | None = RunDirOption,
) -> None:
    """Add (or update) a building of a community."""
    from cloud.db.pool import connect
    from cloud.registry.store import add_building, ensure_community

    with connect(options.database_url(database_url, run_dir)) as conn:
        ensure_community(conn, community)
        bid = add_building(conn, community, building, name=name, floors=floors, basement_floors=basement_floors,
                           lat=lat, lon=lon)
    out.print(f"building {community}/{building} id {bid}", markup=False, highlight=False)


@device_app.command("account")
def device_account(
    community: str = typer.Argument(..., help="Community id whose MQTT devices (gates) get the account."),
    passwd_file: Path | None = typer.Option(None, "--passwd-file", help="Production Mosquitto password file."),
    acl_file: Path | None = typer.Option(None, "--acl-file", help="Production Mosquitto ACL file."),
    broker_pid: int | None = typer.Option(None, "--broker-pid", help="Send SIGHUP to this broker to reload."),
    run_dir: Path | None = RunDirOption,
) -> None:
    """Create or rotate the broker account of a community's MQTT devices (devices/{community}/# only)."""
    from cloud.registry.provisioning import BrokerFiles, provision_devices
    from guanjia.app.stack.local import LocalStack
    from guanjia.core.errors import ConfigError, ConfigIssue

    if bool(passwd_file) != bool(acl_file):
        raise ConfigError([ConfigIssue("options", None, "--passwd-file/--acl-file", "give both or neither")])
    files = BrokerFiles(passwd_file, acl_file, broker_pid) if passwd_file and acl_file else None
    account = provision_devices(community, files=files,
                                stack=None if files else LocalStack(options.run_dir(run_dir)))
    out.print(f"MQTT username: {account.username}   (devices/{community}/# only)", markup=False, highlight=False)
    out.print(f"MQTT password: {account.password}   (shown once; store it in the gates' config)", markup=False,
              highlight=False)


@device_app.command("add")
def device_add(
    community: str = typer.Argument(...),
    device: str = typer.Argument(...),
    gateway: str | None = typer.Option(None, "--gateway"),
    building: str | None = typer.Option(None, "--building"),
    floor: int | None = typer.Option(None, "--floor"),
    kind: str = typer.Option("unknown", "--kind", help="elevator, water_pump, access_gate, energy_meter, …"),
    profile: str | None = typer.Option(None, "--profile", help="Device profile id."),
    name: str = typer.Option("", "--name"),
    lat: float | None = typer.Option(None, "--lat"),
    lon: float | None = typer.Option(None, "--lon"),
    database_url: str | None = DbOption,
    run_dir: Path | None = RunDirOption,
) -> None:
    """Add (or update) a device: its gateway, building, floor, kind, profile and map position."""
    from cloud.db.pool import connect
    from cloud.registry.store import add_device

    with connect(options.database_url(database_url, run_dir)) as conn:
        did = add_device(conn, community, device, gateway=gateway, building=building, floor=floor, kind=kind,
                         profile_id=profile, name=name, lat=lat, lon=lon)
    out.print(f"device {community}/{device} id {did}", markup=False, highlight=False)
