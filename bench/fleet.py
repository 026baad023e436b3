"""``fleet``: a configuration rollout to 100 gateways, a rollback that works, and command round trips.

Everything real except the number of processes: a private PostgreSQL and Mosquitto, a simulated
fleet of VFD pumps (``guanjia sim run --fleet``: one pump per gateway, 25 behind each of four
converter ports), 100 edge agents (the product's :class:`~edge.agent.Agent`, 25 per process,
:mod:`bench.fleet_agents`) and, in this process, the cloud's ``config-rollout`` and
``command-dispatcher`` components on the product's :class:`~cloud.service.CloudService` with
the edge validator injected as ``guanjia cloud serve`` does. The agents log in with the broker's
admin account (one account instead of 100 provisioned ones; the topics are the gateways' own).

Figures:

* ``rollout_all_applied_s`` — a rules change (one rule file) to every gateway in three stages
  (1 canary, 10 %, all), from the rollout's creation until every gateway has reported the new
  version ``good``. Each stage waits for its gateways' probation (``probation_s``, shortened here
  from the 60 s default; the figure is dominated by 3 × it).
* ``rollback_ok`` — 1 when a broken profile (registers moved: it validates, the pump answers
  nothing) sent to the canary is rolled back by the edge (``devices_offline``), the canary runs
  the previous version again, the rollout halts and no other gateway was sent the version.
* ``command_rtt_p50_ms`` / ``command_rtt_p99_ms`` — a write (pump pressure setpoint) from the
  moment it is queued (``created_at``) until the edge's reply is stored (``finished_at``), one
  at a time, spread over the gateways.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
import yaml

from guanjia.app.demo_rollout import PROFILE_FILE, broken_profile, pressure_rule, pump_bundle
from guanjia.app.procs import Supervisor, guanjia_cmd
from guanjia.app.stack.local import ADMIN_USER, LocalStack

COMMUNITY = "fleetbench"
PER_PROCESS = 25
PERIOD_S = 2.0
TIMEOUT_S = 2.0
OFFLINE_AFTER = 5
"""Each pump polled every 2 s with a 2 s deadline: a hundred agents share two cores here, and the
bench measures rollout and commands, not how a starved event loop answers Modbus in time. For
the same reason a pump counts as offline after 5 failed polls in a row (3 by default): ninety
gateways applying a version at the same instant share two cores here, never on real boxes."""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(quick: bool = False) -> dict[str, Any]:
    from cloud.db.migrate import migrate
    from cloud.registry import store

    gateways = 100
    probation_s = 3.0 if quick else 5.0
    commands = 30 if quick else 100
    root = Path(tempfile.mkdtemp(prefix="guanjia-fleet-"))
    root.chmod(0o755)
    stack = LocalStack(root / "run")
    env = stack.up()
    supervisor = Supervisor(root / "logs", env={"GUANJIA_MODE": "test", **env})
    try:
        database_url = env["GUANJIA_DATABASE_URL"]
        migrate(database_url)
        broker = stack.broker()
        admin = stack.account(ADMIN_USER)
        assert admin is not None
        admin_url = broker.url_for(admin)
        names = [f"gw-{i:03d}" for i in range(gateways)]
        fleet = {"community": COMMUNITY, "layout": "shared", "devices": [
            {"id": f"pump-{i:03d}", "profile": "vfd-pump", "unit": i % PER_PROCESS + 1,
             "converter": f"conv-{i // PER_PROCESS}"} for i in range(gateways)]}
        (root / "fleet.yaml").write_text(yaml.safe_dump(fleet))
        inventory = root / "inventory.json"
        supervisor.start("simulators", guanjia_cmd("sim", "run", "--fleet", str(root / "fleet.yaml"), "--inventory",
                                                   str(inventory), "--mqtt-url", broker.url_for(
                                                       stack.devices_account(COMMUNITY))))
        deadline = time.monotonic() + 60
        while not inventory.exists():
            if supervisor.dead() or time.monotonic() > deadline:
                raise RuntimeError("simulators did not start: " + supervisor.children[0].tail())
            time.sleep(0.2)
        entries = {e["id"]: e for e in orjson.loads(inventory.read_bytes())["devices"]}
        device_ids: dict[str, int] = {}
        with psycopg.connect(database_url) as conn:
            for i, name in enumerate(names):
                store.add_gateway(conn, COMMUNITY, name)
                device_ids[name] = store.add_device(conn, COMMUNITY, f"pump-{i:03d}", gateway=name, kind="pump",
                                                    profile_id="vfd-pump")
        configs: list[Path] = []
        bundles: dict[str, dict[str, str]] = {}
        for i, name in enumerate(names):
            entry = entries[f"pump-{i:03d}"]
            folder = root / "agents" / name
            folder.mkdir(parents=True)
            devices = [{"id": f"pump-{i:03d}", "profile": "vfd-pump", "unit": int(entry["unit"]),
                        "report_by_exception": False, "period_s": PERIOD_S}]
            (folder / "agent.yaml").write_text(yaml.safe_dump({
                "gateway": name, "community": COMMUNITY,
                "uplink": {"url": admin_url, "reconnect_initial_s": 0.2, "reconnect_max_s": 2.0},
                "outbox": {"path": "outbox.db", "synchronous": "normal"},
                "links": [{"type": "tcp", "host": entry["host"], "port": int(entry["port"]), "timeout_s": TIMEOUT_S,
                           "offline_after": OFFLINE_AFTER,
                           "devices": devices}],
                "rules": {"builtin": False, "state_path": "rules.json"}}))
            configs.append(folder / "agent.yaml")
            bundles[name] = pump_bundle(entry["host"], int(entry["port"]), [(f"pump-{i:03d}", int(entry["unit"]))],
                                        period_s=PERIOD_S, timeout_s=TIMEOUT_S, offline_after=OFFLINE_AFTER)
        for index in range(0, gateways, PER_PROCESS):
            supervisor.start(f"agents-{index // PER_PROCESS}", [sys.executable, "-m", "bench.fleet_agents",
                                                               *map(str, configs[index:index + PER_PROCESS])])
        return asyncio.run(_measure(database_url, admin_url, names, bundles, device_ids, probation_s, commands))
    finally:
        supervisor.stop()
        stack.down()


async def _measure(database_url: str, mqtt_url: str, names: list[str], bundles: dict[str, dict[str, str]],
                   device_ids: dict[str, int], probation_s: float, commands: int) -> dict[str, Any]:
    from cloud.db.pool import open_pool
    from cloud.ops.fleet import configs, rollout
    from cloud.ops.fleet.commands import submit
    from cloud.ops.fleet.dispatcher import components as dispatcher
    from cloud.ops.fleet.repo import load_command
    from cloud.runtime.context import CloudConfig
    from cloud.service import CloudService
    from edge.bundle import check_bundle
    from guanjia.core.clock import SystemClock
    from guanjia.core.settings import Settings

    clock = SystemClock()
    settings = Settings(mode="test", database_url=database_url, mqtt_url=mqtt_url)
    config = CloudConfig.from_settings(settings, api=False, migrate=False, workers=0)
    async with CloudService(settings, config, components=[rollout.components, dispatcher], clock=clock,
                            edge_config=check_bundle), open_pool(database_url, min_size=1, max_size=4) as pool:
        async def states() -> dict[int, configs.ConfigStateRow]:
            async with pool.connection() as conn:
                return await configs.config_states(conn)

        deadline = time.monotonic() + 180
        while len(await states()) < len(names):  # every gateway has reported (its agent is up)
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(await states())} of {len(names)} gateways reported")
            await asyncio.sleep(0.5)
        async with pool.connection() as conn:
            ids = {}
            for name in names:
                gateway_id = await configs.gateway_by_code(conn, COMMUNITY, name)
                assert gateway_id is not None
                ids[name] = gateway_id
            refs = await configs.gateway_refs(conn, list(ids.values()), all_communities=True, communities=[])
            by_code = {r.code: r for r in refs}
            for name in names:
                await rollout.upload_version(conn, check_bundle, by_code[name], bundles[name], by="bench",
                                             at=clock.now(), note="base")
        ordered = [by_code[n] for n in names]
        await asyncio.sleep(3)  # the pumps have been polled a few times: they count as online before the push

        # 1. a rules change to all 100, in three stages
        started = time.monotonic()
        change = {"rules/bench.yaml": pressure_rule("fleet-bench-pressure", 15.5)}
        async with pool.connection() as conn:
            first = await rollout.start_rollout(conn, check_bundle, ordered, change, [], canary=1,
                                                percent=10, probation_s=probation_s, by="bench", at=clock.now(),
                                                note="rules change")
        assert isinstance(first, int), first
        state = await _wait(pool, first, timeout=600)
        applied_s = time.monotonic() - started
        async with pool.connection() as conn:
            first_targets = await configs.targets(conn, first)
        applied = sum(t.state == "applied" for t in first_targets)
        halt_first = next((f"{t.gateway}: {t.reason}: {t.detail}"[:200] for t in first_targets if t.state == "failed"),
                          "")

        # 2. a broken profile: the canary must roll it back and the rollout halt
        good = {t.gateway: t.version for t in first_targets}
        rb_started = time.monotonic()
        async with pool.connection() as conn:
            second = await rollout.start_rollout(conn, check_bundle, ordered, {PROFILE_FILE: broken_profile()},
                                                 [], canary=1, percent=10, probation_s=30.0, by="bench",
                                                 at=clock.now(), note="broken profile")
        assert isinstance(second, int), second
        halted = await _wait(pool, second, timeout=120)
        rollback_s = time.monotonic() - rb_started
        async with pool.connection() as conn:
            second_targets = await configs.targets(conn, second)
        canary = second_targets[0]
        reported = (await states())[canary.gateway_id]
        rollback_ok = int(halted == "halted" and canary.state == "failed" and canary.reason == "devices_offline"
                          and reported.state == "rolled_back" and reported.running == good[canary.gateway]
                          and all(t.state == "waiting" for t in second_targets[1:]))
        async with pool.connection() as conn:
            await rollout.abort(conn, second, by="bench", at=clock.now())

        # 3. command round trips, one at a time, over the gateways
        rtts: list[float] = []
        queued: list[float] = []
        outcomes: dict[str, int] = {}
        for i in range(commands):
            name = names[(i * 7) % len(names)]
            async with pool.connection() as conn:
                row = await submit(conn, device_id=device_ids[name], point="pressure_setpoint",
                                   value=round(3.0 + (i % 10) / 10, 1), issued_by="bench", now=clock.now(),
                                   expires_in=dt.timedelta(seconds=30))
            assert row is not None
            assert row.status == "pending", row
            while True:
                await asyncio.sleep(0.02)  # the figure is from the row's own timestamps, not this loop
                async with pool.connection() as conn:
                    done = await load_command(conn, device_ids[name], row.command_id)
                if done is not None and done.status not in ("pending", "sent"):
                    break
            outcomes[done.status] = outcomes.get(done.status, 0) + 1
            if done.status == "done" and done.finished_at is not None and done.sent_at is not None:
                rtts.append((done.finished_at - done.created_at).total_seconds() * 1000)
                queued.append((done.sent_at - done.created_at).total_seconds() * 1000)
    return {
        "gateways": len(names),
        "rollout_all_applied_s": round(applied_s, 2) if state == "completed" else None,
        "rollout_state": state,
        "rollout_applied": applied,
        "rollout_halt_reason": halt_first,
        "probation_s": probation_s,
        "rollback_ok": rollback_ok,
        "rollback_s": round(rollback_s, 2),
        "rollback_canary_s": round((canary.done_at - canary.sent_at).total_seconds(), 2)
        if canary.done_at and canary.sent_at else None,
        "rollback_reason": f"{canary.reason}: {canary.detail}"[:200],
        "commands": commands,
        "command_outcomes": outcomes,
        "command_rtt_p50_ms": round(statistics.median(rtts), 1) if rtts else None,
        "command_rtt_p99_ms": round(_percentile(rtts, 0.99), 1) if rtts else None,
        "command_queued_p50_ms": round(statistics.median(queued), 1) if queued else None,
        "command_queued_p99_ms": round(_percentile(queued, 0.99), 1) if queued else None,
    }


async def _wait(pool: Any, rollout_id: int, timeout: float) -> str:
    from cloud.ops.fleet import configs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with pool.connection() as conn:
            found = await configs.rollouts(conn, all_communities=True, communities=[], rollout_id=rollout_id)
        if found and found[0].state != "running":
            return found[0].state
        await asyncio.sleep(0.1)
    return "running"
