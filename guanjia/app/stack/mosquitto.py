"""A private Mosquitto broker in a folder, with its accounts and ACLs.

Anonymous access is off. The accounts, their password hashes and ACL text are the production
definitions of :mod:`cloud.registry.broker` (the dev stack is above the cloud, so it imports
them; production provisioning never imports the dev stack). :func:`write_auth_files` writes a
whole password and ACL file pair (the local stack, ``guanjia stack auth-files``).
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.registry.broker import BrokerAccount, acl_lines, passwd_line
from guanjia.app.stack.pids import pid_running
from guanjia.core.errors import StackError
from guanjia.core.files import write_private
from guanjia.core.ports import free_port, wait_for_port

log = logging.getLogger(__name__)

INSTALL_HINT = "install the broker: apt-get install -y mosquitto mosquitto-clients"


def write_auth_files(passwd_file: Path, acl_file: Path, accounts: Iterable[BrokerAccount]) -> None:
    """Write Mosquitto's password and ACL files atomically (the broker reloads them on SIGHUP).

    The ACL file is replaced first: a reload that reads the new password file then reads the
    new ACLs too, so an account that can log in is never one without its topics.
    """
    accounts = list(accounts)
    pw_lines = [passwd_line(a) for a in accounts]
    acl: list[str] = []
    for a in accounts:
        acl += [*acl_lines(a), ""]
    for path, lines in ((acl_file, acl), (passwd_file, pw_lines)):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.unlink(missing_ok=True)
        # born with its final mode (the password hashes never exist world-readable), then renamed
        write_private(tmp, "\n".join(lines) + "\n", 0o600 if path == passwd_file else 0o644)
        _chown_to_broker(tmp)
        os.replace(tmp, path)


def _broker_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("mosquitto")
    except KeyError:
        return None


def _chown_to_broker(path: Path) -> None:
    user = _broker_user()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


@dataclass(slots=True)
class MosquittoServer:
    """One broker in ``directory`` with accounts persisted in ``accounts.json`` (mode 0600)."""

    directory: Path
    port: int = 0
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None
    tls: tuple[Path, Path, Path] | None = None
    """Optional (cafile, certfile, keyfile): adds a TLS listener on ``tls_port`` (issue 9)."""
    tls_port: int = 0

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).absolute()
        if self.tls is not None and not self.tls_port:
            self.tls_port = free_port()
        if not self.port:
            self.port = free_port()

    @property
    def accounts_file(self) -> Path:
        return self.directory / "accounts.json"

    def accounts(self) -> list[BrokerAccount]:
        if not self.accounts_file.exists():
            return []
        raw = json.loads(self.accounts_file.read_text())
        return [BrokerAccount(a["username"], a["password"], [tuple(x) for x in a["acl"]]) for a in raw]

    def set_accounts(self, accounts: Iterable[BrokerAccount]) -> None:
        """Add or replace accounts by username, rewrite the auth files and reload the broker."""
        merged = {a.username: a for a in self.accounts()}
        merged.update({a.username: a for a in accounts})
        self.directory.mkdir(parents=True, exist_ok=True)
        write_private(self.accounts_file, json.dumps([asdict(a) for a in merged.values()], indent=1))
        write_auth_files(self.directory / "passwd", self.directory / "acl", merged.values())
        self.reload(confirm=list(accounts))

    def ensure_account(self, account: BrokerAccount) -> BrokerAccount:
        """Return the stored account with this username, creating it from ``account`` if absent."""
        for existing in self.accounts():
            if existing.username == account.username:
                return existing
        self.set_accounts([account])
        return account

    def url_for(self, account: BrokerAccount) -> str:
        from urllib.parse import quote

        return f"mqtt://{quote(account.username, safe='')}:{quote(account.password, safe='')}@{self.host}:{self.port}"

    def _write_config(self) -> Path:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        user = _broker_user()
        lines = [
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {self.directory / 'passwd'}",
            f"acl_file {self.directory / 'acl'}",
            f"listener {self.port} {self.host}",
            "persistence true",
            f"persistence_location {data}/",
            "autosave_interval 30",
            "max_inflight_messages 1000",
            "max_queued_messages 2000000",
            "max_queued_bytes 0",
            "max_packet_size 2097152",
            "set_tcp_nodelay true",
            f"log_dest file {self.directory / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            f"user {user.pw_name if user else 'root'}" if os.geteuid() == 0 else "",
        ]
        if self.tls is not None:
            cafile, certfile, keyfile = self.tls
            lines += [f"listener {self.tls_port} {self.host}", f"cafile {cafile}", f"certfile {certfile}",
                      f"keyfile {keyfile}", "tls_version tlsv1.2"]
        conf = self.directory / "mosquitto.conf"
        conf.write_text("\n".join(line for line in lines if line) + "\n")
        if user is not None:
            for path in (self.directory, data, *data.iterdir(), self.directory / "mosquitto.log"):
                if path.exists():
                    os.chown(path, user.pw_uid, user.pw_gid)
        return conf

    def start(self, timeout: float = 15.0) -> None:
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if binary is None:
            raise StackError(f"mosquitto not found; {INSTALL_HINT}")
        self.directory.mkdir(parents=True, exist_ok=True)
        if not (self.directory / "passwd").exists():
            write_auth_files(self.directory / "passwd", self.directory / "acl", self.accounts())
        conf = self._write_config()
        log_file = open(self.directory / "stdout.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen([binary, "-c", str(conf)], stdout=log_file, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log_file.close()
        (self.directory / "pid").write_text(str(self.process.pid))
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            tail = (self.directory / "mosquitto.log").read_text(errors="replace")[-1500:] if (
                self.directory / "mosquitto.log").exists() else ""
            raise StackError(f"mosquitto did not open port {self.port}: {tail}")

    def pid(self) -> int | None:
        if self.process is not None and self.process.poll() is None:
            return self.process.pid
        pid_file = self.directory / "pid"
        if pid_file.exists():
            try:
                pid = int(pid_file.read_text())
            except ValueError:
                return None
            return pid if pid_running(pid) else None
        return None

    def running(self) -> bool:
        return self.pid() is not None

    def reload(self, confirm: Iterable[BrokerAccount] = (), timeout: float = 10.0) -> None:
        """SIGHUP the broker; with ``confirm``, return only once each account can log in.

        Why confirm: Mosquitto clears its reload flag *after* a reload, so a SIGHUP that arrives
        while an earlier reload is reading the files is lost, and an account written just then
        stays unknown until some later change (two accounts added back to back: the second
        refused for good). Logging in with the account proves the broker read our files; if it
        is refused the signal is sent again, with a growing pause.
        """
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGHUP)
        pending = list(confirm)
        deadline, pause = time.monotonic() + timeout, 0.02
        while pending:
            pending = [a for a in pending if not _logs_in(self.host, self.port, a)]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise StackError(f"mosquitto on port {self.port} still refuses {pending[0].username} "
                                 f"{timeout:.0f} s after the reload")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
            os.kill(pid, signal.SIGHUP)

    def stop(self, kill: bool = False) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process is not None:
                if self.process.poll() is not None:
                    break
            elif not pid_running(pid):
                break
            time.sleep(0.05)
        self.process = None
        (self.directory / "pid").unlink(missing_ok=True)


def _logs_in(host: str, port: int, account: BrokerAccount, timeout: float = 5.0) -> bool:
    """Whether the broker accepts ``account``'s password now: one CONNECT, answered, then closed.

    A fresh client id each time, so the probe never takes over a session of the account's
    real client (a gateway connected under its own id keeps its connection).
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"reload-probe-{secrets.token_hex(5)}",
                         protocol=mqtt.MQTTv311)
    client.username_pw_set(account.username, account.password)
    answer: list[bool] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answer.append(not reason.is_failure)
    try:
        client.connect(host, port, keepalive=10)
        deadline = time.monotonic() + timeout
        while not answer and time.monotonic() < deadline:
            client.loop(timeout=0.05)
    except OSError:
        return False
    finally:
        client.disconnect()
    return bool(answer and answer[0])
