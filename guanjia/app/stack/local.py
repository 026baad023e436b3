"""``guanjia stack up|down|status|env``: the private services of one checkout, under ``.run/``.

State lives in ``.run/stack.json`` (ports) and the service folders, so a second ``make demo``
reuses the same ports, data and accounts. Variables already set in the environment
(``GUANJIA_DATABASE_URL``, ``GUANJIA_MQTT_URL``) win: the stack then starts nothing for them.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cloud.registry.broker import BrokerAccount, devices_username
from guanjia.app.stack.mosquitto import MosquittoServer
from guanjia.app.stack.postgres import PostgresServer
from guanjia.core.ports import free_port, reuse_or_pick
from guanjia.core.wire import INGEST_STATUS_FILTER

CLOUD_USER = "cloud"
ADMIN_USER = "admin"


def _cloud_account(password: str | None = None) -> BrokerAccount:
    """The cloud reads every gateway's uplink and writes only commands and its ingest workers' ``behind`` status."""
    return BrokerAccount(
        CLOUD_USER,
        password or secrets.token_urlsafe(18),
        [("read", "guanjia/v1/#"), ("write", "guanjia/v1/+/+/cmd"), ("write", INGEST_STATUS_FILTER),
         ("read", "$SYS/#")],
    )


def _admin_account() -> BrokerAccount:
    return BrokerAccount(ADMIN_USER, secrets.token_urlsafe(18), [("readwrite", "#")])


def broker_accounts_from_env(env: dict[str, str]) -> list[BrokerAccount]:
    """Accounts of a production broker (docker-compose): cloud, the community's devices
    (``dev-{GUANJIA_COMMUNITY}``) and one gateway."""
    return [
        _cloud_account(env["MQTT_CLOUD_PASSWORD"]),
        BrokerAccount.devices(env["GUANJIA_COMMUNITY"], env["MQTT_DEVICES_PASSWORD"]),
        BrokerAccount.gateway(env["GUANJIA_COMMUNITY"], env["GUANJIA_GATEWAY"], env["MQTT_GATEWAY_PASSWORD"]),
    ]


@dataclass(slots=True)
class LocalStack:
    run_dir: Path

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir).absolute()

    # ------------------------------------------------------------------ state
    @property
    def state_file(self) -> Path:
        return self.run_dir / "stack.json"

    def _state(self) -> dict[str, int]:
        if self.state_file.exists():
            data: dict[str, int] = json.loads(self.state_file.read_text())
            return data
        return {}

    def _save(self, state: dict[str, int]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.run_dir, 0o755)
        self.state_file.write_text(json.dumps(state))

    def postgres(self) -> PostgresServer:
        state = self._state()
        server = PostgresServer(self.run_dir / "postgres", port=state.get("pg_port") or free_port())
        if not server.running():
            server.port = reuse_or_pick(server.port)
        return server

    def broker(self) -> MosquittoServer:
        state = self._state()
        broker = MosquittoServer(self.run_dir / "mosquitto", port=state.get("mqtt_port") or free_port())
        if not broker.running():
            broker.port = reuse_or_pick(broker.port)
        return broker

    # ------------------------------------------------------------------ commands
    def up(self) -> dict[str, str]:
        """Start what the environment does not give. Each service's port is recorded *before* it
        starts, so :meth:`down` also stops one whose start was interrupted (Ctrl-C or SIGTERM
        while PostgreSQL was still starting left it running, unknown to the state file)."""
        state = self._state()
        if not os.environ.get("GUANJIA_DATABASE_URL"):
            pg = self.postgres()
            state["pg_port"] = pg.port
            self._save(state)
            pg.start()
        if not os.environ.get("GUANJIA_MQTT_URL"):
            mq = self.broker()
            mq.ensure_account(_admin_account())
            mq.ensure_account(_cloud_account())
            state["mqtt_port"] = mq.port
            self._save(state)
            if not mq.running():
                mq.start()
        return self.env()

    def down(self) -> None:
        if "pg_port" in self._state():
            self.postgres().stop()
        if "mqtt_port" in self._state():
            self.broker().stop()

    def account(self, username: str) -> BrokerAccount | None:
        return next((a for a in self.broker().accounts() if a.username == username), None)

    def devices_account(self, community: str) -> BrokerAccount:
        """The community's device account (created on first use, then reused)."""
        return self.account(devices_username(community)) or self.broker().ensure_account(
            BrokerAccount.devices(community))

    def env(self) -> dict[str, str]:
        """The variables a shell can eval; given variables are passed through unchanged."""
        state = self._state()
        out: dict[str, str] = {}
        if url := os.environ.get("GUANJIA_DATABASE_URL"):
            out["GUANJIA_DATABASE_URL"] = url
        elif "pg_port" in state:
            out["GUANJIA_DATABASE_URL"] = self.postgres().dsn
        if url := os.environ.get("GUANJIA_MQTT_URL"):
            out["GUANJIA_MQTT_URL"] = url
        elif "mqtt_port" in state and (cloud := self.account(CLOUD_USER)) is not None:
            out["GUANJIA_MQTT_URL"] = self.broker().url_for(cloud)
        return out

    def status(self) -> dict[str, str]:
        state = self._state()
        pg = "external" if os.environ.get("GUANJIA_DATABASE_URL") else (
            f"running on 127.0.0.1:{state['pg_port']}" if "pg_port" in state and self.postgres().running()
            else "stopped")
        mq = "external" if os.environ.get("GUANJIA_MQTT_URL") else (
            f"running on 127.0.0.1:{state['mqtt_port']}" if "mqtt_port" in state and self.broker().running()
            else "stopped")
        return {"postgresql": pg, "mosquitto": mq, "run_dir": str(self.run_dir)}
