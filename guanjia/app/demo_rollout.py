"""The demo's configuration rollout (issue 19): two extra gateways, each with one pump of the
simulated community, get a rules change rolled out to both, then a broken profile that the canary
rolls back by itself while the rollout halts.

Everything goes through the product: the gateways are provisioned like any other (broker account
and ACL), their agents are ``guanjia edge run`` processes, the rollouts are created with the same
functions as ``POST /api/v1/config-rollouts`` (validated by the edge's own validator, audited as
``demo``), and the cloud's ``config-rollout`` component pushes them. The bundle builders here are
shared by the ``fleet`` bench and the rollout tests: one pump on one Modbus TCP link whose profile
is a bundle file (so a change of the profile alone reaches the device).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import yaml

from device_profiles.loader import LIBRARY
from guanjia.core.clock import Clock

GATEWAYS = ("gw-r1", "gw-r2")
PROFILE_FILE = "profiles/pump.yaml"
PUMP_PROFILE = (LIBRARY / "vfd-pump.yaml").read_text(encoding="utf-8")
RULE_ID = "demo-outlet-pressure-high"


def devices_yaml(host: str, port: int, devices: list[tuple[str, int]], *, period_s: float | None = None,
                 timeout_s: float = 0.5, offline_after: int = 3) -> str:
    """``devices.yaml``: one tcp link with (device id, unit id) pumps whose profile is the bundle's."""
    entries = [{"id": device, "profile": PROFILE_FILE, "unit": unit, "report_by_exception": False,
                **({"period_s": period_s} if period_s else {})} for device, unit in devices]
    return yaml.safe_dump({"links": [{"type": "tcp", "host": host, "port": port, "timeout_s": timeout_s,
                                      "offline_after": offline_after, "devices": entries}]}, sort_keys=False)


def pump_bundle(host: str, port: int, devices: list[tuple[str, int]], *, period_s: float | None = None,
                timeout_s: float = 0.5, offline_after: int = 3) -> dict[str, str]:
    return {"devices.yaml": devices_yaml(host, port, devices, period_s=period_s, timeout_s=timeout_s,
                                         offline_after=offline_after),
            PROFILE_FILE: PUMP_PROFILE}


def broken_profile() -> str:
    """The pump profile with every register moved 3000 up: valid YAML, a valid profile, and a
    device that answers every read with ``illegal data address`` (the mistake of a wrong offset)."""
    return re.sub(r"address: (\d+)", lambda m: f"address: {int(m.group(1)) + 3000}", PUMP_PROFILE)


def pressure_rule(rule_id: str, above: float) -> str:
    """A site rule: outlet pressure above ``above`` bar raises an alarm at once."""
    return yaml.safe_dump({"version": 1, "rules": [{
        "id": rule_id, "title": {"zh": "出口压力偏高", "en": "Outlet pressure high"}, "severity": "minor",
        "kinds": ["pump"], "message": "{device}: outlet pressure {outlet_pressure} bar",
        "state": {"metric": "outlet_pressure", "above": above}}]}, sort_keys=False, allow_unicode=True)


def pumps(inventory: Path, count: int = len(GATEWAYS)) -> list[dict[str, Any]]:
    """The first simulated Modbus pumps of the inventory (host, port, unit)."""
    entries = json.loads(inventory.read_text(encoding="utf-8")).get("devices", [])
    found = [e for e in entries if e.get("profile") == "vfd-pump" and e.get("port") and e.get("host")]
    return found[:count]


def agent_yaml(community: str, gateway: str, mqtt_url: str, pump: dict[str, Any]) -> str:
    return yaml.safe_dump({
        "gateway": gateway, "community": community, "uplink": {"url": mqtt_url, "keepalive_s": 15},
        "outbox": {"path": "outbox.db", "max_bytes": "64MB"},
        "links": [{"type": "tcp", "host": pump["host"], "port": int(pump["port"]), "devices": [
            {"id": f"{gateway}-pump", "profile": "vfd-pump", "unit": int(pump["unit"]),
             "report_by_exception": False}]}],
        "rules": {"builtin": True, "state_path": "rules-state.json"},
        "health": {"heartbeat_s": 10}})


def script(database_url: str, community: str, pump_list: list[dict[str, Any]], clock: Clock,
           timeout_s: float = 120.0) -> list[str]:
    """Run the two rollouts and say what happened (lines for the demo's banner)."""
    return asyncio.run(_script(database_url, community, pump_list, clock, timeout_s))


async def _script(database_url: str, community: str, pump_list: list[dict[str, Any]], clock: Clock,
                  timeout_s: float) -> list[str]:
    from cloud.db.pool import connect_async
    from cloud.ops.fleet import configs, rollout
    from edge.bundle import check_bundle

    deadline = time.monotonic() + timeout_s
    async with connect_async(database_url, "guanjia-demo", autocommit=True) as conn:
        ids: list[int] = []
        for gateway in GATEWAYS:
            gateway_id = await configs.gateway_by_code(conn, community, gateway)
            if gateway_id is None:
                return [f"rollout demo skipped: gateway {gateway} is not registered"]
            ids.append(gateway_id)
        # both agents up and reporting this run's state (they start unmanaged: no good version; a
        # row still naming one is what the last run's agents said)
        while not _fresh(await configs.config_states(conn), ids):
            if time.monotonic() > deadline:
                return ["rollout demo skipped: the two rollout gateways did not report in time (see the logs)"]
            await asyncio.sleep(1)
        refs = await configs.gateway_refs(conn, ids, all_communities=True, communities=[])
        for ref, pump in zip(refs, pump_list, strict=True):
            await rollout.upload_version(conn, check_bundle, ref, pump_bundle(
                str(pump["host"]), int(pump["port"]), [(f"{ref.code}-pump", int(pump["unit"]))]),
                by="demo", at=clock.now(), note="the pump's profile as a bundle file")
        await asyncio.sleep(5)  # polled a few times: online before the push
        lines = []
        first = await rollout.start_rollout(conn, check_bundle, refs, {"rules/site.yaml": pressure_rule(RULE_ID, 0.5)},
                                            [], canary=1, percent=50, probation_s=5, by="demo", at=clock.now(),
                                            note="demo: a site rule for outlet pressure")
        state = await _wait(conn, first, deadline) if isinstance(first, int) else "refused"
        lines.append(f"rules change to {', '.join(GATEWAYS)} (rollout {first}): {state}")
        second = await rollout.start_rollout(conn, check_bundle, refs, {PROFILE_FILE: broken_profile()}, [], canary=1,
                                             percent=50, probation_s=30, by="demo", at=clock.now(),
                                             note="demo: a pump profile with wrong register addresses")
        state = await _wait(conn, second, deadline) if isinstance(second, int) else "refused"
        if isinstance(second, int):
            targets = await configs.targets(conn, second)
            lines.append(f"broken profile (rollout {second}): {state}; canary {targets[0].gateway}: "
                         f"{targets[0].state} ({targets[0].reason}), {targets[1].gateway}: {targets[1].state}")
        return lines


def _fresh(states: dict[int, Any], ids: list[int]) -> bool:
    return all(i in states and states[i].good is None for i in ids)


async def _wait(conn: Any, rollout_id: int, deadline: float) -> str:
    from cloud.ops.fleet import configs

    while time.monotonic() < deadline:
        found = await configs.rollouts(conn, all_communities=True, communities=[], rollout_id=rollout_id)
        if found and found[0].state != "running":
            return found[0].state
        await asyncio.sleep(0.5)
    return "still running"
