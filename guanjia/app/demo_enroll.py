"""The demo's new gateway (issue 19): a box that joins with a one-time bootstrap token and nothing else.

What an installer does on site, through the product's own paths: an admin issues a token for a
gateway the cloud knows (the same function as ``POST /api/v1/gateways/{id}/bootstrap-tokens``,
audited as ``demo``); the box runs ``guanjia edge enroll --cloud URL --token T``, which spends the
token over HTTP and writes the gateway's identity, broker address and username into its agent
file and the password into a 0600 file beside it; the cloud has put the new account into the
broker's password and ACL files and reloaded the broker; ``guanjia edge run`` connects.

Each demo start issues a fresh token and enrols again, which is how credentials are rotated: the
local broker's account list is rebuilt when the demo starts, and an enrolled account lives only
in the broker files the cloud edits (``GUANJIA_BROKER_PASSWD_FILE`` / ``_ACL_FILE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path

import yaml

from guanjia.app.procs import Supervisor, guanjia_cmd
from guanjia.core.clock import Clock

GATEWAY = "gw-new"


def issue_token(database_url: str, community: str, clock: Clock) -> str:
    """Register the gateway if the cloud does not know it yet and issue a one-time token for it."""
    import psycopg

    from cloud.registry import store
    from cloud.runtime.errors import RegistryError

    # registered by an earlier demo run: a new token rotates its credentials
    with psycopg.connect(database_url, autocommit=True) as conn, contextlib.suppress(RegistryError):
        store.add_gateway(conn, community, GATEWAY, name="新网关 / new gateway", auto_register=True)
    return asyncio.run(_issue(database_url, community, clock))


async def _issue(database_url: str, community: str, clock: Clock) -> str:
    from cloud.db.pool import connect_async
    from cloud.ops.fleet import configs
    from cloud.registry import bootstrap

    async with connect_async(database_url, "guanjia-demo") as conn:
        gateway_id = await configs.gateway_by_code(conn, community, GATEWAY)
        assert gateway_id is not None
        token, _expires = await bootstrap.issue_token(conn, gateway_id, created_by="demo", now=clock.now())
        await conn.commit()
    return token


def enroll_and_run(folder: Path, cloud_url: str, token: str, community: str, supervisor: Supervisor) -> str:
    """``guanjia edge enroll`` with the token only, then ``guanjia edge run``; what the enrolment said."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "agent.yaml"
    if not config.exists():
        # what the installer brings: devices (none here) and local settings, no identity, no credentials
        config.write_text(yaml.safe_dump({
            "gateway": "unset", "community": community, "uplink": {"url": "mqtt://unset:1883", "keepalive_s": 15},
            "outbox": {"path": "outbox.db", "max_bytes": "16MB"}, "links": [],
            "rules": {"builtin": True, "state_path": "rules-state.json"}, "health": {"heartbeat_s": 10}}),
            encoding="utf-8")
    argv = guanjia_cmd("edge", "enroll", "--cloud", cloud_url, "--token", token, "--config", str(config))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        return f"enrolment refused: {(done.stderr or done.stdout).strip()[-300:]}"
    supervisor.start(f"edge-{GATEWAY}", guanjia_cmd("edge", "run", "--config", str(config)))
    return done.stdout.strip()
