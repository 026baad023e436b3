"""One typed settings object read from the environment (``GUANJIA_*``), as in the FastAPI template.

Outside ``demo`` mode a secret must be given explicitly: there is no usable default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from guanjia.errors import ConfigError, ConfigIssue

DEMO_SECRET = "demo-only-secret-do-not-use-in-production-0000"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GUANJIA_", extra="ignore")

    mode: Literal["demo", "production", "test"] = "production"
    database_url: str | None = None
    mqtt_url: str | None = None
    secret_key: str | None = Field(default=None, repr=False)
    run_dir: Path = Path(".run")
    log_level: str = "INFO"
    wo_policy: Path | None = None
    """``GUANJIA_WO_POLICY``: the work-order SLA policy YAML (the shipped defaults when unset). The
    cloud service loads it once into ``ServiceContext.policy`` and hands that one object to the
    alarm processor, escalation, the API, the web inbox and analytics alike."""

    @model_validator(mode="after")
    def _secrets(self) -> Settings:
        if self.secret_key is None and self.mode in ("demo", "test"):
            self.secret_key = DEMO_SECRET
        if self.mode == "production" and (self.secret_key is None or len(self.secret_key) < 32):
            raise ConfigError(
                [ConfigIssue("environment", None, "GUANJIA_SECRET_KEY",
                             "required outside demo mode, at least 32 characters")]
            )
        return self


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
