"""Gateway enrolment and credentials: bootstrap tokens (admin), ``/api/v1/enroll`` (the agent),
revocation (admin). The decisions are in :mod:`cloud.registry.bootstrap`.

``POST /api/v1/enroll`` is public — the token is the credential — and answers an unknown, spent,
voided or expired token alike (**401** ``invalid_token``). Without the broker's files configured
(``GUANJIA_BROKER_PASSWD_FILE`` / ``GUANJIA_BROKER_ACL_FILE``) enrolment and revocation answer
**409** ``broker_not_configured`` (a state of this installation, not an outage): an account the
broker does not know would be no account. A broker whose files cannot be written is **503**.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from cloud.api.deps import AdminUser, ClockDep, PoolDep
from cloud.registry import bootstrap
from cloud.registry.provisioning import BrokerFiles
from cloud.runtime.errors import BrokerError
from guanjia.core.settings import MqttUrl, Settings

router = APIRouter(prefix="/api/v1", tags=["provisioning"])


class TokenIn(BaseModel):
    ttl_s: float = Field(bootstrap.DEFAULT_TTL.total_seconds(), ge=60, le=30 * 86_400,
                         description="the token is refused after this long")


class TokenOut(BaseModel):
    gateway_id: int
    community: str
    gateway: str
    token: str = Field(description="shown once; only its hash is stored")
    expires_at: dt.datetime


class EnrollIn(BaseModel):
    token: Annotated[str, Field(min_length=8, max_length=100)]


class EnrollOut(BaseModel):
    community: str
    gateway: str
    mqtt_url: str = Field(description="the broker, without credentials")
    username: str
    password: str = Field(description="the gateway's own broker password; shown once")


class RevokedOut(BaseModel):
    gateway_id: int
    username: str
    revoked_at: dt.datetime


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _broker_files(settings: Settings) -> BrokerFiles:
    try:
        files = BrokerFiles.of(settings.broker_passwd_file, settings.broker_acl_file, settings.broker_pid_file)
    except BrokerError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            {"code": "broker_unavailable", "message": str(exc)}) from exc
    if files is None:
        raise HTTPException(status.HTTP_409_CONFLICT, {
            "code": "broker_not_configured",
            "message": "GUANJIA_BROKER_PASSWD_FILE and GUANJIA_BROKER_ACL_FILE are not set"})
    return files


def _gateway_mqtt_url(settings: Settings) -> str:
    raw = settings.gateway_mqtt_url or settings.mqtt_url
    if not raw:
        raise HTTPException(status.HTTP_409_CONFLICT, {
            "code": "broker_not_configured", "message": "GUANJIA_GATEWAY_MQTT_URL (or GUANJIA_MQTT_URL) is not set"})
    url = MqttUrl.parse(raw)
    return MqttUrl(url.host, url.port, tls=url.tls).url()


@router.post("/gateways/{gateway_id}/bootstrap-tokens", response_model=TokenOut,
             status_code=status.HTTP_201_CREATED, summary="A one-time token to enrol (or re-enrol) the gateway")
async def create_token(gateway_id: int, pool: PoolDep, user: AdminUser, clock: ClockDep,
                       body: TokenIn | None = None) -> TokenOut:
    ttl = dt.timedelta(seconds=(body or TokenIn()).ttl_s)
    async with pool.connection() as conn:
        identity = await bootstrap.gateway_identity(conn, gateway_id)
        if identity is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "gateway not found")
        token, expires_at = await bootstrap.issue_token(conn, gateway_id, created_by=user.username,
                                                        now=clock.now(), ttl=ttl)
    return TokenOut(gateway_id=gateway_id, community=identity.community, gateway=identity.gateway, token=token,
                    expires_at=expires_at)


@router.post("/enroll", response_model=EnrollOut, summary="The agent spends its bootstrap token for its credentials")
async def enroll(request: Request, body: EnrollIn, pool: PoolDep, clock: ClockDep) -> EnrollOut:
    settings = _settings(request)
    files = _broker_files(settings)
    mqtt_url = _gateway_mqtt_url(settings)
    async with pool.connection() as conn:
        try:  # the broker first; the token is spent only if this worked (the commit at the block's end)
            redeemed = await bootstrap.enroll(conn, files, body.token, clock.now())
        except (BrokerError, OSError) as exc:
            await conn.rollback()
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                {"code": "broker_unavailable", "message": str(exc)[:300]}) from exc
        if redeemed is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, {
                "code": "invalid_token", "message": "unknown, used, revoked or expired bootstrap token"})
        identity, account = redeemed
    return EnrollOut(community=identity.community, gateway=identity.gateway, mqtt_url=mqtt_url,
                     username=account.username, password=account.password)


@router.post("/gateways/{gateway_id}/revoke", response_model=RevokedOut,
             summary="Revoke the gateway's broker credentials and void its unused tokens")
async def revoke(request: Request, gateway_id: int, pool: PoolDep, user: AdminUser, clock: ClockDep) -> RevokedOut:
    files = _broker_files(_settings(request))
    now = clock.now()
    async with pool.connection() as conn:
        if await bootstrap.gateway_identity(conn, gateway_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "gateway not found")
        try:
            username = await bootstrap.revoke_gateway(conn, files, gateway_id, now, actor=user.username)
        except (BrokerError, OSError) as exc:
            await conn.rollback()
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                {"code": "broker_unavailable", "message": str(exc)[:300]}) from exc
    return RevokedOut(gateway_id=gateway_id, username=username, revoked_at=now)
