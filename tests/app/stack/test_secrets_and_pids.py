"""Secret-holding files are created 0600; a zombie process is not "running" (issue 14, section 7)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from cloud.registry.broker import BrokerAccount
from guanjia.app.cli.demo import _agent_config, _save_secret
from guanjia.app.stack.local import LocalStack
from guanjia.app.stack.mosquitto import MosquittoServer
from guanjia.app.stack.pids import pid_running, process_state
from guanjia.app.stack.postgres import PostgresServer
from guanjia.core.files import write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_private_creates_the_file_with_its_mode_and_replaces_a_wider_one(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[int] = []
    real_open = os.open

    def spy(path: str | os.PathLike[str], flags: int, mode: int = 0o777, *args: int) -> int:
        if flags & os.O_CREAT:
            created.append(mode)
        return real_open(path, flags, mode, *args)

    monkeypatch.setattr(os, "open", spy)
    target = tmp_path / "agent.yaml"
    target.write_text("old")
    target.chmod(0o644)
    write_private(target, "password: s3cret\n")
    assert created == [0o600]  # born private: no chmod after a world-readable moment
    assert _mode(target) == 0o600
    assert target.read_text() == "password: s3cret\n"
    assert [p.name for p in tmp_path.iterdir()] == ["agent.yaml"]  # no temporary left behind


def test_demo_agent_config_and_credentials_are_private(tmp_path: Path) -> None:
    agent = _agent_config(tmp_path, "mqtt://gw:very-secret-password@127.0.0.1:1883")
    assert "very-secret-password" in agent.read_text()
    assert _mode(agent) == 0o600
    creds = tmp_path / "gateway.json"
    _save_secret(creds, {"username": "gw", "password": "very-secret-password"})
    assert _mode(creds) == 0o600


def test_broker_password_and_accounts_files_are_private(tmp_path: Path) -> None:
    broker = MosquittoServer(tmp_path / "mq")
    broker.directory.mkdir(parents=True)
    broker.set_accounts([BrokerAccount("gw-1", "a-long-enough-password", [("readwrite", "guanjia/#")])])
    assert _mode(broker.accounts_file) == 0o600
    assert _mode(broker.directory / "passwd") == 0o600
    assert _mode(broker.directory / "acl") == 0o644  # topic rules only, no secret


def _zombie() -> subprocess.Popen[bytes]:
    """A child that has exited and that nobody reaped yet (its pid still exists)."""
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while process_state(child.pid) != "Z":
        assert time.monotonic() < deadline, "the child did not become a zombie"
        time.sleep(0.01)
    return child


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_a_zombie_is_not_running_for_the_stack_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUANJIA_DATABASE_URL", raising=False)
    monkeypatch.delenv("GUANJIA_MQTT_URL", raising=False)
    assert pid_running(os.getpid())
    child = _zombie()
    try:
        os.kill(child.pid, 0)  # the signal probe alone says "alive"
        assert not pid_running(child.pid)
        stack = LocalStack(tmp_path / "run")
        stack._save({"mqtt_port": 1883, "pg_port": 5432})
        mq_dir, pg_data = stack.run_dir / "mosquitto", stack.run_dir / "postgres" / "data"
        mq_dir.mkdir(parents=True)
        pg_data.mkdir(parents=True)
        (mq_dir / "pid").write_text(str(child.pid))
        (pg_data / "postmaster.pid").write_text(f"{child.pid}\n{pg_data}\n")
        assert not MosquittoServer(mq_dir).running()
        assert not PostgresServer(stack.run_dir / "postgres").running()
        status = stack.status()
        assert status["mosquitto"] == "stopped"
        assert status["postgresql"] == "stopped"
    finally:
        child.wait()


def test_production_broker_files_keep_the_password_hashes_and_gateway_secret_private(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from guanjia.app.cli.stack import app

    for key in ("MQTT_CLOUD_PASSWORD", "MQTT_DEVICES_PASSWORD", "MQTT_GATEWAY_PASSWORD"):
        monkeypatch.setenv(key, f"{key.lower()}-long-enough")
    monkeypatch.setenv("GUANJIA_COMMUNITY", "demo")
    monkeypatch.setenv("GUANJIA_GATEWAY", "gw-1")
    out, secret = tmp_path / "config", tmp_path / "secrets" / "mqtt-password"
    result = CliRunner().invoke(app, ["broker-files", "--out", str(out), "--gateway-secret", str(secret)])
    assert result.exit_code == 0, result.output
    assert _mode(out / "passwd") == 0o600
    assert _mode(secret) == 0o600
    assert secret.read_text() == "mqtt_gateway_password-long-enough\n"
    assert _mode(out / "acl") == 0o644
    assert _mode(out / "mosquitto.conf") == 0o644
    if os.geteuid() == 0:  # handed to the broker image's user rather than opened to everyone
        assert (out / "passwd").stat().st_uid == 1883


def test_a_stack_start_interrupted_while_postgresql_starts_is_taken_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C or SIGTERM during ``guanjia demo``'s first seconds: PostgreSQL is up but ``up()``
    never returned. ``down()`` must still stop it (it used to stay running, unknown to the state)."""
    monkeypatch.delenv("GUANJIA_DATABASE_URL", raising=False)
    monkeypatch.delenv("GUANJIA_MQTT_URL", raising=False)

    def interrupted(self: PostgresServer) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(PostgresServer, "_ensure_database", interrupted)
    directory = Path(tempfile.mkdtemp(prefix="guanjia-stack-"))
    directory.chmod(0o755)  # the postgres system user must reach it when we run as root
    stack = LocalStack(directory / "run")
    try:
        with pytest.raises(KeyboardInterrupt):
            stack.up()
        assert stack.postgres().running(), "the server came up before the interrupt"
        stack.down()
        assert not stack.postgres().running()
    finally:
        stack.postgres().stop()
        shutil.rmtree(directory, ignore_errors=True)
