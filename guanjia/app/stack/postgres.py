"""A private PostgreSQL cluster in a folder, on a free port, for demos and tests.

PostgreSQL refuses to run as root, so when we are root the cluster folder is handed to the
``postgres`` system user and every server command runs through ``runuser``. TimescaleDB is
preloaded when its extension files are installed; otherwise the cluster is plain PostgreSQL and
the storage layer falls back to declarative partitioning.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from guanjia.app.stack.pids import pid_running
from guanjia.core.errors import StackError
from guanjia.core.files import write_private
from guanjia.core.ports import free_port

log = logging.getLogger(__name__)

INSTALL_HINT = "install PostgreSQL 15+ server binaries: apt-get install -y postgresql"


def find_bindir() -> Path:
    """Locate initdb/pg_ctl: $PG_BINDIR, pg_config, then the newest Debian cluster version."""
    candidates: list[str] = []
    if env := os.environ.get("PG_BINDIR"):
        candidates.append(env)
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for cand in candidates:
        if cand and (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    raise StackError(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}")


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


def timescaledb_available(bindir: Path) -> bool:
    """True when the timescaledb extension is installed for this server version."""
    pg_config = bindir / "pg_config"
    sharedir = None
    if pg_config.exists():
        sharedir = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True,
                                  check=False).stdout.strip()
    if not sharedir:
        sharedir = f"/usr/share/postgresql/{bindir.parent.name}"
    return Path(sharedir, "extension", "timescaledb.control").exists()


@dataclass(slots=True)
class PostgresServer:
    """One cluster in ``directory``. ``start()`` creates it on first use and reuses it after."""

    directory: Path
    port: int = 0
    user: str = "guanjia"
    password: str = ""
    database: str = "guanjia"
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).absolute()
        if not self.port:
            self.port = free_port()
        if not self.password:
            pw_file = self.directory / "password"
            self.password = pw_file.read_text().strip() if pw_file.exists() else secrets.token_urlsafe(18)

    # --------------------------------------------------------------- helpers
    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def dsn(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return (
            f"postgresql://{quote(self.user)}:{quote(self.password, safe='')}@{self.host}:{self.port}/"
            f"{quote(database)}"
        )

    def _as_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *cmd]
        return cmd

    def _run(self, cmd: list[str], what: str) -> None:
        proc = subprocess.run(self._as_owner(cmd), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise StackError(f"{what} failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")

    def _chown(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise StackError(f"running as root needs the 'postgres' system user; {INSTALL_HINT}") from exc
        for root, dirs, files in os.walk(self.directory):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
        os.chown(self.directory, pw.pw_uid, pw.pw_gid)

    # --------------------------------------------------------------- lifecycle
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        bindir = find_bindir()
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        pw_file = self.directory / "password"
        write_private(pw_file, self.password + "\n")
        self._chown()
        self._run(
            [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", self.user, "--pwfile", str(pw_file),
             "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
            "initdb",
        )
        conf = [
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.directory}'",
            "shared_buffers = '512MB'",
            "work_mem = '16MB'",
            "maintenance_work_mem = '256MB'",
            "max_wal_size = '4GB'",
            "checkpoint_timeout = '15min'",
            "wal_buffers = '32MB'",
            "max_connections = 200",
            "timezone = 'UTC'",
            "log_min_messages = warning",
        ]
        if timescaledb_available(bindir):
            conf += ["shared_preload_libraries = 'timescaledb'", "timescaledb.telemetry_level = off"]
        with open(self.data_dir / "postgresql.auto.conf", "a", encoding="utf-8") as fh:
            fh.write("\n".join(conf) + "\n")

    def start(self, timeout: float = 60.0) -> None:
        if not self.initialised():
            self.init()
        bindir = find_bindir()
        if self.running():
            return
        self._chown()
        self._run(
            [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.directory / "postgres.log"),
             "-w", "-t", str(int(timeout)), "-o", f"-p {self.port}", "start"],
            f"starting PostgreSQL (log: {self.directory / 'postgres.log'})",
        )
        self._ensure_database()

    def _ensure_database(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=10) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{self.database}"')
        except psycopg.Error as exc:
            raise StackError(f"PostgreSQL started but is not reachable: {exc}") from exc

    def running(self) -> bool:
        pid = self.data_dir / "postmaster.pid"
        if not pid.exists():
            return False
        try:
            return pid_running(int(pid.read_text().split()[0]))
        except (ValueError, IndexError, OSError):
            return False

    def stop(self, timeout: float = 90.0) -> None:
        """Fast shutdown (clients disconnected, checkpoint written); immediate if that hangs."""
        if not self.running():
            return
        try:
            self._run([str(find_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                       "-t", str(int(timeout)), "stop"], "stopping PostgreSQL")
        except StackError:
            log.warning("PostgreSQL did not stop within %.0f s; stopping it immediately (crash recovery "
                        "at next start)", timeout)
            self.kill()

    def kill(self) -> None:
        """Stop immediately, as a crash would (used by fault-injection tests)."""
        if self.running():
            self._run([str(find_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w",
                       "stop"], "killing PostgreSQL")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)
