"""One typed settings object read from the environment (``GUANJIA_*``), as in the FastAPI template.

Outside ``demo`` mode a secret must be given explicitly and be strong: there is no usable default,
and the published demo secret or a short / repetitive key is a startup error naming
``GUANJIA_SECRET_KEY`` (``production`` refuses to start without one; ``test`` starts, but anything
that signs tokens — the API — refuses to be built without one instead of silently using the demo
secret).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from guanjia.core.errors import ConfigError, ConfigIssue

DEMO_SECRET = "demo-only-secret-do-not-use-in-production-0000"
MIN_SECRET_LENGTH = 32
MIN_SECRET_VARIETY = 10
_SECRET_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def weak_secret(secret: str) -> str | None:
    """Why ``secret`` must not sign tokens outside demo mode, or None when it is acceptable."""
    if secret == DEMO_SECRET:
        return "is the published demo secret"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"must have at least {MIN_SECRET_LENGTH} characters"
    if len(set(secret)) < MIN_SECRET_VARIETY:
        return f"must use at least {MIN_SECRET_VARIETY} different characters"
    return None


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GUANJIA_", extra="ignore")

    mode: Literal["demo", "production", "test"] = "production"
    database_url: str | None = None
    mqtt_url: str | None = None
    secret_key: str | None = Field(default=None, repr=False)
    run_dir: Path = Path(".run")
    log_level: str = "INFO"
    trusted_proxies: str = Field(default="", description="comma-separated addresses/networks of reverse "
                                 "proxies whose X-Forwarded-For is believed; empty: none")
    wo_policy: Path | None = None
    """``GUANJIA_WO_POLICY``: the work-order SLA policy YAML (the shipped defaults when unset). The
    cloud service loads it once into ``ServiceContext.policy`` and hands that one object to the
    alarm processor, escalation, the API, the web inbox and analytics alike."""
    smtp_url: str | None = Field(default=None, repr=False)
    """``GUANJIA_SMTP_URL``: the notification sender's SMTP server (see :mod:`cloud.ops.delivery.email`);
    unset: email deliveries fail with a reason. Not in ``repr``: the URL may carry a password."""
    sms_url: str | None = Field(default=None, repr=False)
    """``GUANJIA_SMS_URL``: the SMS provider (see :mod:`cloud.ops.delivery.sms`, Aliyun today);
    unset: SMS deliveries fail with a reason. Not in ``repr``: the URL carries the access key."""
    voice_url: str | None = Field(default=None, repr=False)
    """``GUANJIA_VOICE_URL``: the voice-call provider (see :mod:`cloud.ops.delivery.voice`, Aliyun
    ``SingleCallByTts``) for unaccepted P0 orders; unset: the calls are skipped (recorded as such)."""
    public_url: str | None = None
    """``GUANJIA_PUBLIC_URL``: the address people open the cloud at (``https://guanjia.example.com``),
    for links in messages (the manager report's messenger summary); unset: the message has no link."""
    heartbeat_timeout_s: float = 120.0
    """``GUANJIA_HEARTBEAT_TIMEOUT_S``: a gateway silent this long gets a ``gateway_offline`` alarm."""
    fleet_rules: str | None = None
    """``GUANJIA_FLEET_RULES``: one extra fleet rule file (rules on hourly rollups)."""
    fleet_stream_rules: str | None = None
    """``GUANJIA_FLEET_STREAM_RULES``: extra stream rule files, separated like ``PATH`` (``os.pathsep``).
    A plain string, not a list: pydantic-settings would parse a list field as JSON."""
    broker_passwd_file: Path | None = None
    """``GUANJIA_BROKER_PASSWD_FILE``: the production Mosquitto's password file, which gateway
    enrolment and revocation edit (with ``GUANJIA_BROKER_ACL_FILE``); unset: enrolment answers 503."""
    broker_acl_file: Path | None = None
    """``GUANJIA_BROKER_ACL_FILE``: the production Mosquitto's ACL file."""
    broker_pid_file: Path | None = None
    """``GUANJIA_BROKER_PID_FILE``: the broker's pid file, read at each change to reload it (SIGHUP)."""
    ingest_processes: int = Field(default=0, ge=0, le=64)
    """``GUANJIA_INGEST_PROCESSES``: processes ``guanjia cloud ingest`` runs when ``--processes`` is not
    given (each its own interpreter: an ingest worker is GIL-bound); 0 = one per CPU core, at most 8."""
    ingest_confirm_window_s: float = Field(default=0.0, ge=0.0, le=1.0)
    """``GUANJIA_INGEST_CONFIRM_WINDOW_S``: an ingest worker sends each gateway at most one storage
    confirmation per this many seconds, merging the commits in between (see
    :mod:`cloud.ingest.confirm`, which says why the default is 0 = after every commit; while
    behind the worker merges over 0.25 s anyway). At most 1 s: the confirmation target."""
    ingest_behind_lag_s: float = Field(default=5.0, gt=0.0, le=25.0)
    """``GUANJIA_INGEST_BEHIND_LAG_S``: broker-side queueing delay (the committed messages' median
    receive − sent time above each gateway's own baseline) at which an ingest worker publishes its
    retained ``behind`` status, so edges hold their resends (see :mod:`cloud.ingest.backlog`).
    Below the edges' 30 s confirmation timeout, or they resend first."""
    ingest_behind_expiry_s: float = Field(default=20.0, ge=5.0, le=600.0)
    """``GUANJIA_INGEST_BEHIND_EXPIRY_S``: MQTT message expiry of that status (refreshed every 2 s
    while behind): how long edges keep holding after a worker died behind."""
    gateway_mqtt_url: str | None = None
    """``GUANJIA_GATEWAY_MQTT_URL``: the broker address an enrolling gateway is given (``mqtts://host:8883``,
    no credentials); unset: the host and port of ``GUANJIA_MQTT_URL``."""

    @model_validator(mode="after")
    def _secrets(self) -> Settings:
        if self.secret_key is None and self.mode == "demo":
            self.secret_key = DEMO_SECRET
        if self.mode == "production" and self.secret_key is None:
            raise ConfigError([ConfigIssue("environment", None, "GUANJIA_SECRET_KEY",
                                           f"required outside demo mode; {_SECRET_HINT}")])
        if self.mode != "demo" and self.secret_key is not None and (reason := weak_secret(self.secret_key)):
            raise ConfigError([ConfigIssue("environment", None, "GUANJIA_SECRET_KEY",
                                           f"{reason} (GUANJIA_MODE={self.mode}); {_SECRET_HINT}")])
        try:
            _networks(self.trusted_proxies)
        except ValueError as exc:
            raise ConfigError([ConfigIssue("environment", None, "GUANJIA_TRUSTED_PROXIES",
                                           f"comma-separated IP addresses or networks: {exc}")]) from exc
        return self

    def require_secret(self) -> str:
        """The signing key, or a :class:`ConfigError` naming the setting (test mode without one)."""
        if self.secret_key is None:
            raise ConfigError([ConfigIssue("environment", None, "GUANJIA_SECRET_KEY",
                                           f"required to serve the API outside demo mode; {_SECRET_HINT}")])
        return self.secret_key

    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return _networks(self.trusted_proxies)


@dataclass(frozen=True, slots=True)
class MqttUrl:
    """``mqtt://user:password@host:port`` or ``mqtts://…`` (TLS)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> MqttUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ConfigError([ConfigIssue("environment", None, "GUANJIA_MQTT_URL",
                                           f"scheme must be mqtt:// or mqtts://, got {parts.scheme!r}")])
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def with_credentials(self, username: str, password: str) -> MqttUrl:
        return MqttUrl(self.host, self.port, username, password, self.tls)

    def url(self) -> str:
        from urllib.parse import quote

        auth = ""
        if self.username:
            auth = quote(self.username, safe="")
            if self.password:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{self.host}:{self.port}"
