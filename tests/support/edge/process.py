"""A real edge agent as a subprocess (``guanjia edge run``) on one Modbus TCP link, for tests that
drive it from the cloud side (remote commands)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]


class AgentProcess:
    """``guanjia edge run`` in a subprocess; :meth:`stop` is a clean shutdown (SIGTERM)."""

    def __init__(self, workdir: Path, url: str, community: str, gateway: str, port: int | None,
                 devices: list[dict[str, Any]], **sections: Any) -> None:
        """``port`` None: no Modbus link; ``sections`` are further config sections (``mqtt_devices``,
        ``isapi``, ``rules``) as the agent's YAML spells them."""
        self.config = workdir / "agent.yaml"
        self.log = workdir / "agent.log"
        links = [] if port is None else [
            {"type": "tcp", "host": "127.0.0.1", "port": port, "timeout_s": 0.5, "devices": devices}]
        self.config.write_text(yaml.safe_dump({
            "gateway": gateway, "community": community,
            "uplink": {"url": url, "reconnect_initial_s": 0.1, "reconnect_max_s": 1.0},
            "outbox": {"path": "outbox.db", "flush_interval_s": 0.05, "synchronous": "normal"},
            "links": links,
            "rules": {"builtin": False, "state_path": "rules.json"},
            **sections,
        }))
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def existing(cls, workdir: Path, config: Path) -> AgentProcess:
        """An agent on a configuration file written elsewhere (an enrolled one)."""
        agent = cls.__new__(cls)
        agent.config, agent.log, agent.proc = config, workdir / "agent.log", None
        return agent

    def start(self) -> AgentProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "guanjia.app.cli.main", "edge", "run", "--config", str(self.config)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
