"""``/api/v1/auth``: the OAuth2 password flow, the caller's profile, password change, logout.

``POST /api/v1/auth/token`` is the only API endpoint that needs no token. Failed logins are
rate-limited per (username, client IP) and per IP (``cloud.auth.ratelimit``): over the limit the
answer is 429 with ``Retry-After``, before the password is even checked.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from cloud.auth.deps import AuthStateDep, CurrentUser, app_pool, client_ip
from cloud.auth.errors import WeakPassword
from cloud.auth.passwords import verify_password_async
from cloud.auth.service import LoginRejected, LoginThrottled, authenticate
from cloud.auth.users import User, get_login, revoke_tokens, set_password

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    display_name: str
    communities: list[str]
    lang: str | None
    all_communities: bool = Field(description="true for admins, who see every community")

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, username=user.username, role=user.role.value, display_name=user.display_name,
                   communities=list(user.communities), lang=user.lang, all_communities=user.is_admin)


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


@router.post("/token", response_model=TokenOut, summary="OAuth2 password flow: get an access token",
             responses={401: {"description": "wrong username or password"},
                        429: {"description": "too many failed attempts; see Retry-After"}})
async def token(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()],
                auth: AuthStateDep) -> TokenOut:
    async with app_pool(request).connection() as conn:
        try:
            user = await authenticate(conn, auth.limiter, form.username, form.password, client_ip(request))
        except LoginThrottled as exc:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc),
                                headers={"Retry-After": str(exc.retry_after)}) from exc
        except LoginRejected as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                                headers={"WWW-Authenticate": "Bearer"}) from exc
    access, ttl = auth.tokens.issue(user.id, user.token_version, "access")
    return TokenOut(access_token=access, expires_in=ttl)


@router.get("/me", response_model=UserOut, summary="The signed-in user")
async def me(user: CurrentUser) -> UserOut:
    return UserOut.of(user)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT,
             summary="Change the own password (revokes every token issued before)")
async def change_password(request: Request, body: PasswordChange, user: CurrentUser) -> None:
    async with app_pool(request).connection() as conn:
        found = await get_login(conn, user.username)
        if found is None or not await verify_password_async(found[1], body.current_password):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "current password is wrong")
        try:
            await set_password(conn, user.id, body.new_password)
        except WeakPassword as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT,
             summary="Revoke every token and session of the signed-in user")
async def logout_all(request: Request, user: CurrentUser) -> None:
    async with app_pool(request).connection() as conn:
        await revoke_tokens(conn, user.id)
