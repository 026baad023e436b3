"""The configuration-rollout part of the wire contract (issue 19): the ``config`` push down on
``…/cmd`` and the gateway's config report up inside its retained ``…/status``.

Why the push carries the bundle itself rather than a fetch URL: the gateway already holds one
authenticated, ACL-checked connection (its MQTT session) and nothing else; an HTTPS fetch would
need a second credential on the box, a reachable cloud URL from every plant room and a second
failure mode. A bundle (device list, profiles, rule files) is a few kB to a few hundred kB,
well under :data:`~guanjia.core.wire.MAX_PAYLOAD_BYTES`.

Why the report rides on ``status`` rather than ``cmd/reply``: a rollback happens *later* than
the push (at the end of a probation window, or after a restart), and ``status`` is retained, so
the cloud learns a gateway's running version and the outcome of its last push whenever it
(re)connects, without a second topic in the broker ACL. The gateway publishes its status at once
after every change of its config state, not only at the heartbeat.

A bundle's ``version`` is a digest of its files (:func:`bundle_version`): the cloud and the edge
compute it the same way, so the edge refuses a push whose files do not match its version
(``digest_mismatch``) and both sides name one version by the same twelve characters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict

import orjson

from guanjia.core.errors import WireError
from guanjia.core.wire import SCHEMA_VERSION

MAX_BUNDLE_BYTES: Final = 512 * 1024
"""Sum of a bundle's file sizes; the push must stay under the broker's message limit."""
MAX_BUNDLE_FILES: Final = 200
BUNDLE_PATH_RE: Final = re.compile(r"^(devices\.yaml|(profiles|rules)/[A-Za-z0-9][A-Za-z0-9_.-]{0,80}\.ya?ml)$")
"""What a bundle may hold: ``devices.yaml`` (the device lists with their poll periods),
``profiles/*.yaml`` (device profiles) and ``rules/*.yaml`` (local rule sets). No folders
below those, no ``..``: a bundle is unpacked on the box and must not write anywhere else."""

ConfigState = Literal["local", "probation", "good", "rolled_back", "refused"]
CONFIG_STATES: Final = ("local", "probation", "good", "rolled_back", "refused")
"""``local``: running the agent file's own devices (nothing pushed yet); ``probation``: a pushed
version applied and being watched; ``good``: it passed probation; ``rolled_back``: it failed
probation and the last good version runs again; ``refused``: it never ran (invalid, busy …)."""


def bundle_version(files: Mapping[str, str]) -> str:
    """The version of a bundle: 12 hex digits of SHA-256 over its files, in name order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name].encode("utf-8")
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:12]


def bundle_shape_problems(files: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(file, message) for every name or size a bundle may not have (before any file is read)."""
    problems: list[tuple[str, str]] = []
    if "devices.yaml" not in files:
        problems.append(("devices.yaml", "a bundle needs devices.yaml (the device lists)"))
    if len(files) > MAX_BUNDLE_FILES:
        problems.append(("", f"{len(files)} files; a bundle holds at most {MAX_BUNDLE_FILES}"))
    total = 0
    for name, text in files.items():
        if not isinstance(name, str) or not BUNDLE_PATH_RE.match(name):
            problems.append((str(name)[:100], "not a bundle file: devices.yaml, profiles/NAME.yaml or rules/NAME.yaml"))
        if not isinstance(text, str):
            problems.append((str(name)[:100], "file content must be text"))
            continue
        total += len(text.encode("utf-8"))
    if total > MAX_BUNDLE_BYTES:
        problems.append(("", f"{total} bytes; a bundle holds at most {MAX_BUNDLE_BYTES}"))
    return problems


# --------------------------------------------------------------------------- the push (down, on cmd)


class ConfigPushDict(TypedDict):
    schema: int
    kind: Literal["cmd"]
    type: Literal["config"]
    id: str
    version: str
    files: dict[str, str]
    probation_s: float | None
    ts: int


@dataclass(frozen=True, slots=True)
class ConfigPush:
    id: str
    version: str
    files: dict[str, str]
    probation_s: float | None = None
    """Override of the gateway's own probation window (a bench or a test shortens it)."""


def encode_config_push(push: ConfigPush, *, ts: int) -> bytes:
    return orjson.dumps(ConfigPushDict(schema=SCHEMA_VERSION, kind="cmd", type="config", id=push.id,
                                       version=push.version, files=dict(push.files),
                                       probation_s=push.probation_s, ts=ts))


def is_config_push(doc: Mapping[str, Any]) -> bool:
    return doc.get("type") == "config"


def parse_config_push(doc: Mapping[str, Any]) -> ConfigPush:
    """Check a push's shape; raise :class:`WireError` (``bad_command``, ``bad_bundle``,
    ``digest_mismatch``). The files' contents are the edge's validators' business."""
    push_id, version, files, probation = doc.get("id"), doc.get("version"), doc.get("files"), doc.get("probation_s")
    if not isinstance(push_id, str) or not push_id or len(push_id) > 64:
        raise WireError("bad_command", "'id' must be a non-empty string")
    if not isinstance(version, str) or not re.fullmatch(r"[0-9a-f]{12}", version):
        raise WireError("bad_command", "'version' must be 12 hex digits")
    if not isinstance(files, dict):
        raise WireError("bad_bundle", "'files' must be an object of file name → text")
    problems = bundle_shape_problems(files)
    if problems:
        raise WireError("bad_bundle", "; ".join(f"{f}: {m}" for f, m in problems)[:500])
    if bundle_version(files) != version:
        raise WireError("digest_mismatch", f"the files' digest is {bundle_version(files)}, not {version}")
    if probation is not None and not (isinstance(probation, int | float) and not isinstance(probation, bool)
                                      and 0 < probation <= 3600):
        raise WireError("bad_command", "'probation_s' must be seconds in (0, 3600]")
    return ConfigPush(push_id, version, dict(files), float(probation) if probation is not None else None)


# --------------------------------------------------------------------------- the report (up, in status.health)


@dataclass(frozen=True, slots=True)
class ConfigReport:
    """``status.health.config``: what the gateway runs and how its last push went (written by the
    edge as :meth:`wire`, read by the cloud with :func:`parse_config_report`)."""

    state: ConfigState
    running: str | None
    """the version running now (``None``: the agent file's own devices, nothing pushed yet)"""
    good: str | None
    """the last version that passed probation (kept on disk, used after a restart)"""
    attempted: str | None
    """the version of the last push"""
    push: str | None
    """the id of the last push (the cloud's rollout target)"""
    reason: str | None
    detail: str
    ts: int

    def wire(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _opt_str(value: object, limit: int = 64) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def parse_config_report(status_payload: bytes) -> ConfigReport | None:
    """The config report inside a ``status`` payload, or ``None`` (an older edge, an offline will)."""
    try:
        doc = orjson.loads(status_payload)
    except orjson.JSONDecodeError:
        return None
    health = doc.get("health") if isinstance(doc, dict) else None
    report = health.get("config") if isinstance(health, dict) else None
    if not isinstance(report, dict) or report.get("state") not in CONFIG_STATES:
        return None
    ts = report.get("ts")
    detail = report.get("detail")
    return ConfigReport(state=report["state"], running=_opt_str(report.get("running")),
                        good=_opt_str(report.get("good")), attempted=_opt_str(report.get("attempted")),
                        push=_opt_str(report.get("push")), reason=_opt_str(report.get("reason")),
                        detail=detail[:500] if isinstance(detail, str) else "",
                        ts=ts if isinstance(ts, int) and not isinstance(ts, bool) else 0)
