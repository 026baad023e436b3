"""Enrolment: a new gateway spends its one-time bootstrap token for its identity and its own
broker credentials (``guanjia edge enroll --cloud URL --token T --config agent.yaml``).

The cloud's side is :mod:`cloud.registry.bootstrap`; here the agent posts the token to
``/api/v1/enroll`` and writes what it gets into its configuration:

* ``gateway``, ``community`` and ``uplink.url`` (the broker, without credentials) and
  ``uplink.username`` go into the agent YAML — created if missing, otherwise updated with every
  other key kept (links, devices, rules); comments are not kept (the YAML is rewritten);
* the password goes into ``broker-password`` beside the YAML, mode 0600, referenced by
  ``uplink.password_file`` — never into the YAML, which people copy around.

Both files are written atomically, the password first, so an interrupted enrolment leaves the old
configuration or the new one, not a YAML naming a password that is not there. A token is single
use: enrolling again (rotation) needs a new token from an admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from edge.errors import EnrollError
from guanjia.core.files import write_private

PASSWORD_FILE = "broker-password"


@dataclass(frozen=True, slots=True)
class Enrolment:
    community: str
    gateway: str
    mqtt_url: str
    username: str
    password: str


async def fetch_enrolment(cloud_url: str, token: str, *, timeout: float = 15.0,
                          transport: httpx.AsyncBaseTransport | None = None) -> Enrolment:
    """Spend ``token`` at the cloud; :class:`EnrollError` when refused or unreachable."""
    url = cloud_url.rstrip("/") + "/api/v1/enroll"
    try:
        async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
            resp = await client.post(url, json={"token": token.strip()})
    except httpx.HTTPError as exc:
        raise EnrollError(f"cannot reach the cloud at {cloud_url}: {exc}") from exc
    if resp.status_code != 200:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:200]
        raise EnrollError(f"the cloud refused the enrolment (HTTP {resp.status_code}): {message}")
    try:
        doc = resp.json()
        return Enrolment(str(doc["community"]), str(doc["gateway"]), str(doc["mqtt_url"]), str(doc["username"]),
                         str(doc["password"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise EnrollError(f"unexpected enrolment answer: {resp.text[:200]}") from exc


def write_enrolment(config: Path, enrolment: Enrolment) -> Path:
    """Write the identity and credentials into ``config`` (see the module docstring); the password file's path."""
    doc: dict[str, Any] = {}
    if config.exists():
        loaded = yaml.safe_load(config.read_text(encoding="utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            raise EnrollError(f"{config}: not a YAML mapping; enrol into a new file or fix it")
        doc = loaded or {}
    password_file = config.parent / PASSWORD_FILE
    write_private(password_file, enrolment.password + "\n")
    raw_uplink = doc.get("uplink")
    uplink: dict[str, Any] = dict(raw_uplink) if isinstance(raw_uplink, dict) else {}
    uplink.pop("password", None)
    uplink.update({"url": enrolment.mqtt_url, "username": enrolment.username, "password_file": str(password_file)})
    doc.update({"gateway": enrolment.gateway, "community": enrolment.community, "uplink": uplink})
    write_private(config, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), 0o644)
    return password_file
