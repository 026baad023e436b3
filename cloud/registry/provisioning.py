"""Gateway provisioning: the registry row plus a broker account limited to the gateway's prefix;
and the broker account of a community's MQTT devices (gates), limited to ``devices/{community}/#``.

Two broker targets:

* the **local stack** (``.run/``): :meth:`guanjia.app.stack.MosquittoServer.set_accounts` keeps the
  account list and reloads the broker. The dev stack is passed in by the caller (the CLI, the
  demo) as anything with ``broker().set_accounts(...)`` (:class:`AccountStore`): the cloud does not
  import the dev stack, which sits above it;
* a **production Mosquitto**: its password and ACL files are edited in place — the gateway's
  old lines replaced, everyone else's kept byte for byte — written atomically, and the broker
  reloaded with SIGHUP (``--broker-pid`` or a pid file).

The password is generated here and returned once (the CLI prints it); only its hash is stored.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cloud.db.pool import connect
from cloud.registry import broker, store
from cloud.registry.broker import BrokerAccount
from cloud.runtime.errors import BrokerError
from guanjia.core.files import write_private


class AccountBroker(Protocol):
    def set_accounts(self, accounts: Iterable[BrokerAccount]) -> None: ...


class AccountStore(Protocol):
    """A broker whose accounts the caller manages (the local stack: ``LocalStack``)."""

    def broker(self) -> AccountBroker: ...


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    passwd: Path
    acl: Path
    pid: int | None = None

    @classmethod
    def of(cls, passwd: Path | None, acl: Path | None, pid_file: Path | None) -> BrokerFiles | None:
        """From the settings (``GUANJIA_BROKER_*``); the pid is read now, as a restarted broker has a new one."""
        if passwd is None or acl is None:
            return None
        pid = None
        if pid_file is not None:
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError) as exc:
                raise BrokerError(f"{pid_file}: no broker pid to reload ({exc})") from exc
        return cls(passwd, acl, pid)


def put_account(files: BrokerFiles, account: BrokerAccount) -> None:
    """Create or replace ``account`` in the broker's files and reload it: a new password replaces
    the old one (rotation), so the old password stops working at the reload."""
    _replace_in_files(files, account)


def remove_account(files: BrokerFiles, username: str) -> None:
    """Delete ``username``'s password and ACL lines and reload: it can connect no more, and a
    session still open loses every topic (Mosquitto checks the ACL on each publish/subscribe)."""
    _replace_in_files(files, None, remove=username)


RELOAD_SETTLE_S = 0.5
"""Pause between the two reload signals: far longer than Mosquitto takes to reread two files."""


def _replace_in_files(files: BrokerFiles, account: BrokerAccount | None, remove: str | None = None) -> None:
    """Replace (or, with ``remove``, delete) one account's lines in the password and ACL files.

    The read-modify-write runs under an exclusive lock on ``<passwd>.lock``: two enrolments at
    once (two API workers, two threads) would otherwise each write the files they read, and one
    account would vanish. The ACL file is replaced before the password file, so a reload that
    sees the new password sees the account's topics too.
    """
    user = account.username if account is not None else remove
    assert user is not None
    lock_path = files.passwd.with_name(files.passwd.name + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _rewrite(files, user, account)
            if files.pid is not None:
                _reload(files.pid)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _rewrite(files: BrokerFiles, user: str, account: BrokerAccount | None) -> None:
    passwd_lines = files.passwd.read_text().splitlines() if files.passwd.exists() else []
    passwd_lines = [ln for ln in passwd_lines if ln.strip() and not ln.startswith(f"{user}:")]
    if account is not None:
        passwd_lines.append(broker.passwd_line(account))
    acl_lines = files.acl.read_text().splitlines() if files.acl.exists() else []
    kept: list[str] = []
    skipping = False
    for line in acl_lines:
        words = line.split()
        if words[:1] == ["user"]:
            skipping = len(words) == 2 and words[1] == user
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    if account is not None:
        kept += ["", *broker.acl_lines(account), ""]
    for path, lines, mode in ((files.acl, kept, 0o644), (files.passwd, passwd_lines, 0o600)):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.unlink(missing_ok=True)
        write_private(tmp, "\n".join(lines) + "\n", mode)  # born private; widened below only to match
        if path.exists():
            st = path.stat()
            os.chmod(tmp, st.st_mode & 0o777)
            if os.geteuid() == 0:
                os.chown(tmp, st.st_uid, st.st_gid)
        else:
            os.chmod(tmp, mode)
        os.replace(tmp, path)


def _reload(pid: int) -> None:
    """Signal the broker twice, :data:`RELOAD_SETTLE_S` apart.

    Why twice: Mosquitto clears its reload flag *after* rereading the files, so a SIGHUP that
    lands while an earlier reload (another writer's) is reading them is lost, and the account
    just written stays unknown until the next change. By the second signal any reload in flight
    has finished, and the one it starts reads what we wrote. The callers run in a worker thread
    (``asyncio.to_thread``) or a CLI, so the pause blocks no event loop.
    """
    try:
        os.kill(pid, signal.SIGHUP)
        time.sleep(RELOAD_SETTLE_S)
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError as exc:
        raise BrokerError(f"broker pid {pid} is not running; reload it by hand") from exc


def provision_gateway(database_url: str, community: str, gateway: str, *, trusted: bool = False,
                      auto_register: bool = False, stack: AccountStore | None = None,
                      files: BrokerFiles | None = None) -> tuple[int, BrokerAccount]:
    """Create the gateway row and its broker account; returns (gateway id, account with password).

    The registry row is committed only after the broker accepted the account, so a failed
    broker update leaves nothing half-made.
    """
    account = BrokerAccount.gateway(community, gateway)
    with connect(database_url) as conn:
        gateway_id = store.add_gateway(conn, community, gateway, trusted=trusted, auto_register=auto_register,
                                       broker_username=account.username,
                                       credentials_ref="broker-files" if files else "local-stack" if stack else None)
        if files is not None:
            _replace_in_files(files, account)
        elif stack is not None:
            stack.broker().set_accounts([account])
        conn.commit()
    return gateway_id, account


def provision_devices(community: str, *, stack: AccountStore | None = None,
                      files: BrokerFiles | None = None) -> BrokerAccount:
    """Create (or rotate: a new password replaces the old one) the community's device account.

    Why one per community and not one per gate: a gate is a small box that only publishes its
    state; what matters is that a password found in one estate opens nothing elsewhere (the ACL
    confines it to ``devices/{community}/#``, and gateways read only their own community there).
    """
    if files is None and stack is None:
        raise BrokerError("no broker to provision: give the local stack or the broker's files")
    account = BrokerAccount.devices(community)
    if files is not None:
        _replace_in_files(files, account)
    elif stack is not None:
        stack.broker().set_accounts([account])
    return account
