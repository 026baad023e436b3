"""``guanjia demo``: what ``make demo`` runs — the whole system on this machine.

Order matters and each step is idempotent, so a second run reuses the data under ``.run/``:
stack (PostgreSQL + Mosquitto) → migrations → simulated community (Modbus + MQTT devices) →
the resident's mailbox (local SMTP, :mod:`guanjia.app.demo_mailbox`) → registry, gateway account,
demo users and butlers → cloud service → edge agent. Each part runs
as its own process (logs in ``.run/demo/logs``), exactly as an operator would run them; Ctrl-C
stops them in reverse order and then stops the services.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from guanjia.app.procs import guanjia_cmd, interrupt_on_sigterm
from guanjia.core.files import write_private

COMMUNITY = "demo"
GATEWAY = "gw-1"
out = Console()


def _load_state(path: Path) -> dict[str, Any]:
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {}


def _save_secret(path: Path, data: dict[str, Any]) -> None:
    write_private(path, json.dumps(data, indent=1))


def _gateway_credentials(database_url: str, demo_dir: Path, run_dir: Path) -> dict[str, str]:
    """Provision the demo gateway once; later runs reuse the stored credentials."""
    from cloud.registry.broker import BrokerAccount
    from cloud.registry.provisioning import provision_gateway
    from guanjia.app.stack.local import LocalStack

    creds_file = demo_dir / "gateway.json"
    stack = LocalStack(run_dir)
    if creds_file.exists():
        creds: dict[str, str] = json.loads(creds_file.read_text())
        # the broker may have been reset (run folder partly deleted): make sure the account exists
        stack.broker().ensure_account(BrokerAccount.gateway(COMMUNITY, GATEWAY, creds["password"]))
        return creds
    from cloud.runtime.errors import CloudError

    try:
        _, account = provision_gateway(database_url, COMMUNITY, GATEWAY, trusted=True, auto_register=True,
                                       stack=stack)
    except CloudError:
        # registered by an earlier run whose credentials file is gone: issue a new password
        account = BrokerAccount.gateway(COMMUNITY, GATEWAY)
        stack.broker().set_accounts([account])
    creds = {"username": account.username, "password": account.password}
    _save_secret(creds_file, creds)
    return creds


def _agent_config(demo_dir: Path, mqtt_url: str) -> Path:
    path = demo_dir / "agent.yaml"
    # the MQTT URL carries the gateway password: the file is created 0600 (guanjia.core.files)
    write_private(path,
        "\n".join([
            "# written by guanjia demo; devices come from the simulator inventory (--inventory)",
            f"gateway: {GATEWAY}",
            f"community: {COMMUNITY}",
            "uplink:",
            f"  url: {mqtt_url}",
            "  keepalive_s: 15",
            "outbox:",
            "  path: outbox.db",
            "  max_bytes: 256MB",
            "links: []",
            "mqtt_devices:",
            "  devices: []",
            "rules:",
            "  builtin: true",
            "  state_path: rules-state.json",
            "health:",
            "  heartbeat_s: 10",
            "",
        ])
    )
    return path


def _wait_for(path: Path, seconds: float, what: str, supervisor: Any) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if dead := supervisor.dead():
            raise typer.Exit(_report_dead(dead))
        if time.monotonic() > deadline:
            out.print(f"[red]{what} did not appear within {seconds:.0f} s[/red]")
            raise typer.Exit(1)
        time.sleep(0.2)


def _report_dead(dead: list[Any]) -> int:
    for child in dead:
        out.print(f"[red]{child.name} stopped (exit {child.process.returncode}); last lines of {child.log_file}:[/red]")
        out.print(child.tail(1500), markup=False, highlight=False)
    return 1


def _telemetry_rows(database_url: str) -> int:
    import psycopg

    from cloud.db.status import recent_telemetry_rows

    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            return recent_telemetry_rows(conn)
    except psycopg.Error:
        return 0


def _wait_http(url: str, seconds: float, supervisor: Any) -> bool:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if dead := supervisor.dead():
            raise typer.Exit(_report_dead(dead))
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def demo(
    devices: int = typer.Option(40, "--devices", "-n", help="Size of the simulated community."),
    speed: float = typer.Option(1.0, help="Simulator time acceleration (simulated s per wall s)."),
    api_port: int = typer.Option(0, help="HTTP port of the dashboard/API (0: reuse the last or pick a free one)."),
    duration: float = typer.Option(0.0, help="Stop by itself after this many seconds (0: run until Ctrl-C)."),
    field_devices: bool = typer.Option(
        True, "--field-devices/--synthetic-devices",
        help="Lift IoT boxes and ISAPI gate controllers (default), or the synthetic Modbus lifts and MQTT gates."),
) -> None:
    """Start the whole system on this machine and print where to look."""
    import asyncio

    from cloud.auth.seed import seed_demo_users
    from cloud.db.migrate import migrate
    from cloud.demo_seed import seed_butlers, seed_call_buttons, seed_registry
    from guanjia.app import demo_mailbox as mailbox
    from guanjia.app.procs import Supervisor
    from guanjia.app.stack.local import LocalStack
    from guanjia.core.errors import StackError
    from guanjia.core.ports import reuse_or_pick
    from guanjia.core.settings import Settings

    interrupt_on_sigterm()  # `timeout`, systemd and docker stop it the way Ctrl-C does
    settings = Settings(mode="demo")
    run_dir = settings.run_dir.absolute()
    demo_dir = run_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    state_file = demo_dir / "state.json"
    state = _load_state(state_file)
    state["api_port"] = api_port or reuse_or_pick(state.get("api_port"))
    state["control_port"] = reuse_or_pick(state.get("control_port"))
    state["mail_port"] = reuse_or_pick(state.get("mail_port"))
    _save_secret(state_file, state)

    out.print("[bold]guanjia demo[/bold] — starting the local services …")
    stack = LocalStack(run_dir)
    supervisor: Supervisor | None = None
    try:  # the stack's own start-up too: an interrupt while PostgreSQL starts must stop it
        env = stack.up()
        database_url = env["GUANJIA_DATABASE_URL"]
        applied = migrate(database_url)
        out.print(f"  database migrated ({len(applied)} new migrations)")

        broker_dir = stack.broker().directory
        # enrolment edits the local broker's own files (a new gateway joins with a token only)
        child_env = {"GUANJIA_MODE": "demo", "GUANJIA_RUN_DIR": str(run_dir), **env,
                     "GUANJIA_BROKER_PASSWD_FILE": str(broker_dir / "passwd"),
                     "GUANJIA_BROKER_ACL_FILE": str(broker_dir / "acl"),
                     "GUANJIA_BROKER_PID_FILE": str(broker_dir / "pid")}
        devices_account = stack.devices_account(COMMUNITY)
        inventory = demo_dir / "inventory.json"
        inventory.unlink(missing_ok=True)
        supervisor = Supervisor(demo_dir / "logs", env=child_env)
        supervisor.start("simulators", guanjia_cmd(
            "sim", "run", "--devices", str(devices), "--community", COMMUNITY, "--inventory", str(inventory),
            "--control-port", str(state["control_port"]), "--labels", str(demo_dir / "labels.jsonl"),
            "--mqtt-url", stack.broker().url_for(devices_account), "--speed", str(speed), "--seed", "7",
            "--serial-meters", "--call-buttons", *(["--field-devices"] if field_devices else [])))
        _wait_for(inventory, 60, "the simulator inventory", supervisor)

        creds = _gateway_credentials(database_url, demo_dir, run_dir)
        count = seed_registry(database_url, inventory, COMMUNITY, GATEWAY)

        # the demo resident's channel: a local mailbox, so each step of her order is delivered
        try:
            mailbox.start(supervisor, state["mail_port"], demo_dir / "mailbox")
        except StackError as exc:
            out.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc

        async def _people() -> list[Any]:
            from cloud.db.pool import connect_async

            async with connect_async(database_url, "guanjia-demo", autocommit=True) as conn:
                logins = await seed_demo_users(conn, COMMUNITY)
                for login in logins:
                    if login.role.value == "resident":
                        await mailbox.point_resident(conn, login.user_id)
                return logins

        logins = asyncio.run(_people())
        seed_butlers(database_url, COMMUNITY)
        seed_call_buttons(database_url, COMMUNITY)
        out.print(f"  registry: community {COMMUNITY}, gateway {GATEWAY}, {count} devices; demo users and butlers")

        async def _operations() -> bool:
            from cloud.db.pool import connect_async
            from cloud.demo_operations import seed_operations
            from cloud.ops.model.policy import default_policy
            from guanjia.core.clock import SystemClock

            async with connect_async(database_url, "guanjia-demo", autocommit=True) as conn:
                return await seed_operations(conn, default_policy(), COMMUNITY, run_dir, SystemClock().now())

        if asyncio.run(_operations()):
            out.print("  operations: a lift maintenance plan (one done, the next open), an inspection route with a"
                      " missed checkpoint, the lift contractor (see docs/operations.md)")

        replay = _analytics_replay(demo_dir, state, child_env)
        supervisor.start("cloud", guanjia_cmd("cloud", "serve", "--api-port", str(state["api_port"]), "--workers", "1"),
                         env={"GUANJIA_SMTP_URL": mailbox.smtp_url(state["mail_port"])})
        base = f"http://127.0.0.1:{state['api_port']}"
        # the broker keeps messages only for subscriptions that exist: the ingest workers'
        # persistent shared subscription must be in place before the agent's first publish
        if not _wait_http(f"{base}/healthz", 90, supervisor):
            out.print("[yellow]the API did not answer /healthz yet; see the cloud log[/yellow]")
        gateway_url = stack.broker().url_for(_account(creds))
        agent = _agent_config(demo_dir, gateway_url)
        supervisor.start("edge", guanjia_cmd("edge", "run", "--config", str(agent), "--inventory", str(inventory)))
        rollout_pumps = _rollout_agents(database_url, demo_dir, run_dir, inventory, supervisor)
        enrolled = _enroll_new_gateway(database_url, demo_dir, base, supervisor)
        deadline = time.monotonic() + 60
        rows = 0
        while time.monotonic() < deadline and (rows := _telemetry_rows(database_url)) == 0:
            if dead := supervisor.dead():
                raise typer.Exit(_report_dead(dead))
            time.sleep(1)
        _banner(base, state, logins, rows, demo_dir, stack)
        out.print(f"[bold]New gateway[/bold] (bootstrap token only): {enrolled}", highlight=False)
        threading.Thread(target=_history, args=(database_url,), name="demo-history", daemon=True).start()
        if rollout_pumps:
            _rollout_script(database_url, rollout_pumps, base)
        if replay:
            out.print("[bold]Predictive maintenance[/bold] (28 simulated days of a wearing pump, replayed):")
            for line in replay:
                out.print("  " + line, markup=False, highlight=False, soft_wrap=True)

        started = time.monotonic()
        while duration <= 0 or time.monotonic() - started < duration:
            if dead := supervisor.dead():
                raise typer.Exit(_report_dead(dead))
            time.sleep(1)
    except KeyboardInterrupt:
        out.print("\nstopping …")
    finally:
        if supervisor is not None:
            supervisor.stop()
        stack.down()
        out.print("stopped; data kept under " + str(run_dir) + " (make demo reuses it)")


def _history(database_url: str) -> None:
    """90 simulated days for every device of the demo community that has no history yet
    (:mod:`guanjia.app.demo_history`), in the background: the services and the banner do not
    wait for it (about half a minute of physics for 40 devices on two idle cores), the charts and
    health records fill in when it is done. Per device and idempotent, so an interrupted run
    finishes on the next ``make demo``."""
    import asyncio

    from cloud.db.pool import connect_async
    from guanjia.app.demo_history import seed_history
    from guanjia.core.clock import SystemClock

    async def run() -> Any:
        async with connect_async(database_url, "guanjia-demo-history") as conn:
            return await seed_history(conn, COMMUNITY, SystemClock().now(), days=90)

    try:
        result = asyncio.run(run())
    except Exception as exc:  # the demo runs on without history; say why
        out.print(f"[yellow]history: not seeded ({exc})[/yellow]")
        return
    if result.devices:
        out.print(f"  history: 90 simulated days for {result.devices} devices ({result.rows:,} hourly rows;"
                  f" physics {result.simulate_s:.1f} s, COPY {result.write_s:.1f} s) — charts, health records and"
                  " the monthly report now show them")


def _rollout_agents(database_url: str, demo_dir: Path, run_dir: Path, inventory: Path,
                    supervisor: Any) -> list[dict[str, Any]]:
    """Two more gateways for the configuration rollout (:mod:`guanjia.app.demo_rollout`), each an
    agent on one simulated pump; provisioned once, their credentials kept like the main one's."""
    from cloud.registry.broker import BrokerAccount
    from cloud.registry.provisioning import provision_gateway
    from cloud.runtime.errors import CloudError
    from guanjia.app import demo_rollout
    from guanjia.app.stack.local import LocalStack

    pumps = demo_rollout.pumps(inventory)
    if len(pumps) < len(demo_rollout.GATEWAYS):
        return []
    stack = LocalStack(run_dir)
    creds_file = demo_dir / "rollout-gateways.json"
    saved: dict[str, Any] = _load_state(creds_file)
    for gateway, pump in zip(demo_rollout.GATEWAYS, pumps, strict=True):
        if gateway in saved:
            account = BrokerAccount.gateway(COMMUNITY, gateway, saved[gateway])
            stack.broker().ensure_account(account)
        else:
            try:
                _, account = provision_gateway(database_url, COMMUNITY, gateway, trusted=True, auto_register=True,
                                               stack=stack)
            except CloudError:  # registered by an earlier run whose credentials file is gone
                account = BrokerAccount.gateway(COMMUNITY, gateway)
                stack.broker().ensure_account(account)
            saved[gateway] = account.password
        folder = demo_dir / "rollout" / gateway
        folder.mkdir(parents=True, exist_ok=True)
        # the simulated pumps listen on new ports at every start: the versions an earlier run pushed
        # (kept by the agent as its last good one) point at ports nobody answers, and a change laid
        # over them would judge a pump that was never online. Each run starts these two unmanaged.
        shutil.rmtree(folder / "managed", ignore_errors=True)
        write_private(folder / "agent.yaml", demo_rollout.agent_yaml(COMMUNITY, gateway,
                                                                     stack.broker().url_for(account), pump))
        supervisor.start(f"edge-{gateway}", guanjia_cmd("edge", "run", "--config", str(folder / "agent.yaml")))
    _save_secret(creds_file, saved)
    return pumps


def _enroll_new_gateway(database_url: str, demo_dir: Path, base: str, supervisor: Any) -> str:
    """A gateway that joins with a one-time bootstrap token only (:mod:`guanjia.app.demo_enroll`)."""
    from guanjia.app import demo_enroll
    from guanjia.core.clock import SystemClock

    token = demo_enroll.issue_token(database_url, COMMUNITY, SystemClock())
    return demo_enroll.enroll_and_run(demo_dir / "enrolled" / demo_enroll.GATEWAY, base, token, COMMUNITY,
                                      supervisor)


def _rollout_script(database_url: str, pumps: list[dict[str, Any]], base: str) -> None:
    from guanjia.app import demo_rollout
    from guanjia.core.clock import SystemClock

    out.print("[bold]Configuration rollout[/bold] (two gateways; see docs/fleet.md) …")
    for line in demo_rollout.script(database_url, COMMUNITY, pumps, SystemClock()):
        out.print("  " + line, markup=False, highlight=False, soft_wrap=True)
    _line("Edge config", f"{base}/fleet/config")


def _analytics_replay(demo_dir: Path, state: dict[str, Any], env: dict[str, str]) -> list[str]:
    """Weeks of simulated bearing wear on a pump outside the live fleet, through the same
    train → score → alarm → planned work order path the scheduled job uses (issue 8's story).
    Done once per run folder; its outcome is kept for the banner of later runs."""
    import subprocess

    if "replay" not in state:
        proc = subprocess.run(
            guanjia_cmd("cloud", "analytics", "replay-demo", "--community", COMMUNITY, "--device", "b1-pump-9"),
            capture_output=True, text=True, env={**os.environ, **env}, timeout=600, check=False)
        (demo_dir / "logs" / "analytics-replay.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            out.print("[yellow]the analytics replay failed; see logs/analytics-replay.log[/yellow]")
            return []
        state["replay"] = [line for line in proc.stdout.splitlines() if line.strip()]
        _save_secret(demo_dir / "state.json", state)
    return list(state["replay"])


def _account(creds: dict[str, str]) -> Any:
    from cloud.registry.broker import BrokerAccount

    return BrokerAccount(creds["username"], creds["password"])


def _banner(base: str, state: dict[str, Any], logins: list[Any], rows: int, demo_dir: Path, stack: Any) -> None:
    from guanjia.app.stack.local import ADMIN_USER

    admin = stack.account(ADMIN_USER)
    broker = stack.broker()
    out.print()
    out.print(f"[green]✔ telemetry is arriving: {rows} rows in the last 10 minutes[/green]" if rows else
              "[yellow]no telemetry rows yet — see the logs below[/yellow]")
    _line("Dashboard / API", f"{base}/   (OpenAPI: {base}/api/docs)")
    out.print("[bold]Demo logins[/bold] (demo mode only):")
    for login in logins:
        out.print(f"  {login.role.value:9} {login.username:10} {login.password}", markup=False, highlight=False)
    ctl = f"http://127.0.0.1:{state['control_port']}"
    _line("Inject a fault", f"curl -X POST {ctl}/faults -d "
          '\'{"device": "b1-lift-1", "fault": "passengers_trapped"}\'')
    if admin is not None:
        _line("Watch the uplink", f"mosquitto_sub -h 127.0.0.1 -p {broker.port} -u {ADMIN_USER} "
              f"-P '{admin.password}' -t 'guanjia/v1/{COMMUNITY}/#' -v")
    from guanjia.app.demo_mailbox import RESIDENT_ADDRESS, mailbox_file

    _line("Resident's mail", f"tail -f {mailbox_file(demo_dir / 'mailbox')}   (陈女士's channel: every step of "
          f"her reports, by email to {RESIDENT_ADDRESS} on the local mailbox)")
    _line("Logs", str(demo_dir / "logs"))
    out.print("Ctrl-C stops everything; `make demo` again reuses the data.")


def _line(label: str, value: str) -> None:
    from rich.markup import escape

    out.print(f"[bold]{label:17}[/bold]{escape(value)}", soft_wrap=True, highlight=False)
