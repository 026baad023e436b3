"""``/api/v1/users``: user administration.

Admins manage everyone; engineers may list the users of their own communities (to see who the
butlers are) but change nothing. Another community's user is a 404, like every tenant check.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from cloud.api.routers.auth import UserOut
from cloud.auth.deps import AdminUser, StaffUser, app_pool, ensure_community_param
from cloud.auth.errors import UserExists, UserNotFound, WeakPassword
from cloud.auth.roles import Role
from cloud.auth.users import create_user, get_user, list_users, set_password, update_user

router = APIRouter(prefix="/api/v1/users", tags=["users"])

Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")]
CommunityId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class UserCreate(BaseModel):
    username: Username
    password: str = Field(min_length=8, max_length=256)
    role: Role
    communities: list[CommunityId] = Field(default_factory=list, max_length=100)
    display_name: str = Field(default="", max_length=100)
    lang: Annotated[str, Field(pattern="^(zh|en)$")] | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9 -]{3,20}$")] | None = None


class UserUpdate(BaseModel):
    role: Role | None = None
    communities: list[CommunityId] | None = Field(default=None, max_length=100)
    display_name: str | None = Field(default=None, max_length=100)
    lang: Annotated[str, Field(pattern="^(zh|en)$")] | None = None
    disabled: bool | None = None


class PasswordReset(BaseModel):
    password: str = Field(min_length=8, max_length=256)


@router.get("", response_model=list[UserOut], summary="List users (admins: all; engineers: own communities)")
async def get_users(request: Request, user: StaffUser,
                    community: Annotated[str | None, Query(max_length=64)] = None,
                    role: Role | None = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100,
                    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> list[UserOut]:
    ensure_community_param(user, community)
    async with app_pool(request).connection() as conn:
        if user.is_admin or community is not None:
            found = await list_users(conn, community=community, role=role, limit=limit, offset=offset)
        else:
            found = []
            for c in user.communities:
                found.extend(await list_users(conn, community=c, role=role, limit=limit, offset=offset))
            found = list({u.id: u for u in found}.values())[:limit]
    return [UserOut.of(u) for u in found]


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED, summary="Create a user",
             responses={409: {"description": "username taken"}})
async def post_user(request: Request, body: UserCreate, _admin: AdminUser) -> UserOut:
    async with app_pool(request).connection() as conn:
        try:
            created = await create_user(conn, body.username, body.password, body.role, body.communities,
                                        display_name=body.display_name, lang=body.lang, phone=body.phone)
        except UserExists as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        except WeakPassword as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    return UserOut.of(created)


@router.get("/{user_id}", response_model=UserOut, summary="One user")
async def get_one(request: Request, user_id: int, user: StaffUser) -> UserOut:
    async with app_pool(request).connection() as conn:
        found = await get_user(conn, user_id)
    if found is None or not (user.is_admin or set(found.communities) & set(user.communities)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return UserOut.of(found)


@router.patch("/{user_id}", response_model=UserOut, summary="Change role, communities, name, language, disabled")
async def patch_user(request: Request, user_id: int, body: UserUpdate, admin: AdminUser) -> UserOut:
    if user_id == admin.id and (body.disabled or (body.role is not None and body.role is not Role.admin)):
        raise HTTPException(status.HTTP_409_CONFLICT, "an admin cannot disable or demote themselves")
    async with app_pool(request).connection() as conn:
        try:
            updated = await update_user(conn, user_id, role=body.role, communities=body.communities,
                                        display_name=body.display_name, lang=body.lang, disabled=body.disabled)
        except UserNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "not found") from exc
    return UserOut.of(updated)


@router.post("/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT,
             summary="Set a user's password (revokes their tokens)")
async def reset_password(request: Request, user_id: int, body: PasswordReset, _admin: AdminUser) -> None:
    async with app_pool(request).connection() as conn:
        try:
            await set_password(conn, user_id, body.password)
        except UserNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "not found") from exc
        except WeakPassword as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
