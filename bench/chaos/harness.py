"""The whole stack on loopback, as separate processes, with handles to break each part.

One :class:`Stack` (private PostgreSQL + Mosquitto, migrated once) serves every scenario; each
scenario gets its own community and gateway (:class:`Site`: simulators, an edge agent with its own
outbox, optionally a TCP fault proxy on its uplink), so scenarios never see each other's data and
reconciliation is per gateway. The cloud service is shared and restarted by the scenarios that
kill it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.chaos.proxy import TcpProxy
from guanjia.app.procs import Child, Supervisor, guanjia_cmd
from guanjia.app.stack.local import LocalStack
from guanjia.app.stack.mosquitto import MosquittoServer
from guanjia.app.stack.postgres import PostgresServer
from guanjia.core.settings import MqttUrl

log = logging.getLogger(__name__)


def wait_until(what: str, check: Callable[[], bool], timeout: float, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


@dataclass(slots=True)
class Stack:
    root: Path
    local: LocalStack = field(init=False)
    env: dict[str, str] = field(default_factory=dict)
    supervisor: Supervisor = field(init=False)
    cloud_children: list[str] = field(default_factory=list)
    _broker: MosquittoServer | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.local = LocalStack(self.root / "run")

    def up(self) -> Stack:
        from cloud.db.migrate import migrate

        self.env = self.local.up()
        self.supervisor = Supervisor(self.root / "logs", env={"GUANJIA_MODE": "test", **self.env})
        migrate(self.database_url)
        return self

    def down(self) -> None:
        self.supervisor.stop()
        self.local.down()

    @property
    def database_url(self) -> str:
        return self.env["GUANJIA_DATABASE_URL"]

    @property
    def broker(self) -> MosquittoServer:
        if self._broker is None:
            self._broker = self.local.broker()
        return self._broker

    def stop_broker(self, kill: bool = False) -> None:
        """Stop the broker; reap it if this process started it (a zombie still answers kill(0))."""
        broker = self.broker
        pid = broker.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        broker.stop(kill=kill)

    @property
    def postgres(self) -> PostgresServer:
        return self.local.postgres()

    def devices_url(self, community: str) -> str:
        """The community's own device account (devices/{community}/# only)."""
        return self.broker.url_for(self.local.devices_account(community))

    # ------------------------------------------------------------------ cloud
    def start_cloud(self, name: str = "cloud", *, workers: int = 1, client_id: str | None = None,
                    wait: bool = True) -> Child:
        """An ingest + alarms process (no API). Waits until its shared subscription exists."""
        args = ["cloud", "serve", "--no-api", "--workers", str(workers)]
        if client_id:
            args += ["--client-id-prefix", client_id]
        child = self.supervisor.start(name, guanjia_cmd(*args))
        if name not in self.cloud_children:
            self.cloud_children.append(name)
        if wait:
            mark = child.log_file.stat().st_size if child.log_file.exists() else 0
            wait_until(f"{name} to subscribe", lambda: self._subscribed(child, mark), 60)
        return child

    def _subscribed(self, child: Child, mark: int) -> bool:
        if not child.alive:
            raise RuntimeError(f"{child.name} died: {child.tail()}")
        return "session present" in child.tail(200_000)[max(0, mark - 200_000):] if mark == 0 else (
            "session present" in child.log_file.read_text(errors="replace")[mark:])

    def cloud_log_mark(self, name: str = "cloud") -> int:
        """Where the cloud's log ends now (see :meth:`wait_cloud_subscribed`)."""
        child = self.child(name)
        return child.log_file.stat().st_size if child is not None and child.log_file.exists() else 0

    def wait_cloud_subscribed(self, mark: int, name: str = "cloud", timeout: float = 60) -> None:
        """Wait until the cloud has (re)subscribed since ``mark``: a shared subscription whose only
        member is away does not queue, so a test publisher must not publish before this."""
        child = self.child(name)
        if child is None:
            raise RuntimeError(f"{name} is not running")
        wait_until(f"{name} to subscribe again", lambda: self._subscribed(child, max(mark, 1)), timeout)

    def child(self, name: str) -> Child | None:
        return next((c for c in self.supervisor.children if c.name == name and c.alive), None)

    def stop_child(self, name: str, timeout: float = 30) -> None:
        child = self.child(name)
        if child is None:
            return
        child.process.terminate()
        try:
            child.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.supervisor.kill(name)

    def ensure_cloud(self) -> None:
        if self.child("cloud") is None:
            self.forget("cloud")
            self.start_cloud("cloud")

    def forget(self, name: str) -> None:
        self.supervisor.children = [c for c in self.supervisor.children if c.name != name or c.alive]

    def sql_autocommit(self, statement: str) -> None:
        with psycopg.connect(self.database_url, connect_timeout=10, autocommit=True) as conn:
            conn.execute(statement.encode())

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, connect_timeout=10) as conn:
            return list(conn.execute(query, args).fetchall())


@dataclass(slots=True)
class Site:
    """One community with its simulators and its edge agent."""

    stack: Stack
    name: str
    devices: int = 8
    proxy: TcpProxy | None = None
    edge_options: str = ""
    sim_args: tuple[str, ...] = ()
    report_by_exception: bool = True
    """False: every poll is sent (the cadence of each device becomes countable in the database)."""
    community: str = field(init=False)
    gateway: str = "gw-1"
    directory: Path = field(init=False)
    inventory: list[dict[str, Any]] = field(default_factory=list)
    uplink_url: str = ""
    control_url: str = ""
    edge_starts: int = 0

    def __post_init__(self) -> None:
        self.community = "chaos-" + self.name.replace("_", "-")
        self.directory = self.stack.root / "sites" / self.name
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def outbox(self) -> Path:
        return self.directory / "outbox.db"

    def start(self, *, use_proxy: bool = False, seed: int = 3) -> Site:
        from cloud.registry.provisioning import provision_gateway

        _, account = provision_gateway(self.stack.database_url, self.community, self.gateway, trusted=True,
                                       auto_register=True, stack=self.stack.local)
        url = self.stack.broker.url_for(account)
        if use_proxy:
            broker = self.stack.broker
            self.proxy = TcpProxy(broker.host, broker.port).start()
            u = MqttUrl.parse(url)
            url = url.replace(f"@{u.host}:{u.port}", f"@127.0.0.1:{self.proxy.port}")
        self.uplink_url = url
        inventory = self.directory / "inventory.json"
        self.stack.supervisor.start(self.sim_name, guanjia_cmd(
            "sim", "run", "--devices", str(self.devices), "--community", self.community, "--inventory",
            str(inventory), "--mqtt-url", self.stack.devices_url(self.community), "--seed", str(seed), *self.sim_args))
        wait_until("simulators", lambda: inventory.exists() and inventory.stat().st_size > 0, 60)
        time.sleep(0.2)
        doc = json.loads(inventory.read_text())
        self.inventory = doc["devices"]
        self.control_url = str(doc.get("control_url") or "")
        (self.directory / "agent.yaml").write_text(
            f"gateway: {self.gateway}\ncommunity: {self.community}\nuplink:\n  url: '{url}'\n"
            "  reconnect_max_s: 2\n  keepalive_s: 5\n"
            f"outbox:\n  path: {self.outbox}\n{self.edge_options}"
            f"links: {self._links()}\nmqtt_devices:\n  devices: []\nrules:\n  builtin: true\n"
            f"  state_path: {self.directory / 'rules-state.json'}\nhealth:\n  heartbeat_s: 5\n")
        self.start_edge()
        return self

    def _links(self) -> str:
        """Explicit links (JSON is YAML) when report-by-exception is off, else the inventory's."""
        if self.report_by_exception:
            return "[]"
        links: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for d in self.inventory:
            if d.get("host") is not None and d.get("port") is not None:
                links.setdefault((d["host"], int(d["port"])), []).append(
                    {"id": d["id"], "profile": d["profile"], "unit": int(d.get("unit") or 1),
                     "report_by_exception": False})
        return json.dumps([{"type": "tcp", "host": h, "port": p, "devices": devs} for (h, p), devs in links.items()])

    @property
    def sim_name(self) -> str:
        return f"sim-{self.name}"

    @property
    def edge_name(self) -> str:
        return f"edge-{self.name}"

    def start_edge(self, ready_timeout_s: float = 90.0) -> Child:
        """Start the agent and return once it says it is up (outbox opened, rules loaded, polling).

        The scenarios' phases (warm-up, outage, after) are timed from a running agent: on a
        loaded machine a Python process can take seconds to import, and a fixed sleep from the
        spawn then killed the agent before it had polled anything (or judged its outbox before it
        had opened it). A child that dies while starting ends the wait; the scenario reports it.
        """
        self.stack.forget(self.edge_name)
        self.edge_starts += 1
        log_file = self.stack.supervisor.log_dir / f"{self.edge_name}.log"
        mark = log_file.stat().st_size if log_file.exists() else 0
        child = self.stack.supervisor.start(self.edge_name, guanjia_cmd(
            "edge", "run", "--config", str(self.directory / "agent.yaml"),
            "--inventory", str(self.directory / "inventory.json")))

        def up() -> bool:
            if not child.alive:
                return True
            with open(log_file, "rb") as fh:
                fh.seek(mark)
                return b"edge agent " in (text := fh.read()) and b" up: " in text

        wait_until(f"{self.edge_name} up", up, ready_timeout_s)
        return child

    def kill_edge(self) -> None:
        self.stack.supervisor.kill(self.edge_name)

    def device(self, kind: str) -> dict[str, Any]:
        return next(d for d in self.inventory if d.get("kind") == kind)

    def inject(self, device: str, fault: str, duration_s: float | None = None,
               params: dict[str, Any] | None = None) -> None:
        control = self.control_url
        body: dict[str, Any] = {"device": device, "fault": fault}
        if duration_s is not None:
            body["duration_s"] = duration_s
        if params:
            body["params"] = params
        req = urllib.request.Request(control.rstrip("/") + "/faults", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def outbox_depth(self) -> int:
        if not self.outbox.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{self.outbox}?mode=ro", uri=True, timeout=5) as db:
                return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
        except sqlite3.Error:
            return -1

    def finish(self, drain_timeout: float = 60) -> None:
        """Stop the devices, let the agent drain its outbox, stop it (SIGTERM), and the proxy."""
        self.stack.stop_child(self.sim_name, 15)
        if self.proxy is not None:
            self.proxy.faults.blackhole = False
            self.proxy.faults.refuse = False
            self.proxy.faults.cut_probability = 0.0
        if self.stack.child(self.edge_name) is not None:
            time.sleep(1.0)
            try:
                wait_until("the outbox to drain", lambda: self.outbox_depth() == 0, drain_timeout, 0.5)
            except TimeoutError:
                log.warning("%s: outbox still holds %d messages", self.name, self.outbox_depth())
            self.stack.stop_child(self.edge_name, 30)
        if self.proxy is not None:
            self.proxy.stop()

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
