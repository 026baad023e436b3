"""The users repository: SQL over an async psycopg connection, no FastAPI here.

Tables (migration ``200_users.sql``): ``users`` and ``user_communities`` (the tenants a user
belongs to). Usernames are matched case-insensitively and stored as given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.rows import dict_row

from cloud.auth.errors import UserExists, UserNotFound, WeakPassword
from cloud.auth.passwords import check_strength, hash_password_async
from cloud.auth.roles import STAFF_ROLES, Role

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated person, as every request handler sees them."""

    id: int
    username: str
    role: Role
    communities: tuple[str, ...] = ()
    display_name: str = ""
    lang: str | None = None
    token_version: int = 0
    disabled: bool = False
    phone: str | None = field(default=None, repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def name(self) -> str:
        return self.display_name or self.username

    def can_see(self, community: str | None) -> bool:
        """Whether the user may see anything of ``community`` (admins see all)."""
        return self.is_admin or (community is not None and community in self.communities)

    def scope(self) -> list[str] | None:
        """The communities to filter on, or None for *all* (admins). Use it in SQL as
        ``(%(all)s OR community = ANY(%(communities)s))`` via :func:`scope_params`."""
        return None if self.is_admin else list(self.communities)


def scope_params(user: User) -> dict[str, Any]:
    """Query parameters ``all`` and ``communities`` for the tenant filter of ``user``."""
    return {"all": user.is_admin, "communities": list(user.communities)}


_SELECT = """
SELECT u.id, u.username, u.role, u.display_name, u.lang, u.token_version, u.disabled, u.phone,
       u.password_hash,
       COALESCE(array_agg(uc.community ORDER BY uc.community)
                FILTER (WHERE uc.community IS NOT NULL), '{}') AS communities
  FROM users u LEFT JOIN user_communities uc ON uc.user_id = u.id
"""


def _user(row: dict[str, Any]) -> User:
    return User(id=row["id"], username=row["username"], role=Role(row["role"]),
                communities=tuple(row["communities"]), display_name=row["display_name"],
                lang=row["lang"], token_version=row["token_version"], disabled=row["disabled"],
                phone=row["phone"])


async def get_user(conn: AsyncConnection[Any], user_id: int) -> User | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SELECT + " WHERE u.id = %s GROUP BY u.id", (user_id,))
        row = await cur.fetchone()
    return _user(row) if row else None


async def get_login(conn: AsyncConnection[Any], username: str) -> tuple[User, str] | None:
    """The user and their password hash, for the login check."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SELECT + " WHERE lower(u.username) = lower(%s) GROUP BY u.id", (username,))
        row = await cur.fetchone()
    return (_user(row), row["password_hash"]) if row else None


async def list_users(conn: AsyncConnection[Any], *, community: str | None = None,
                     role: Role | None = None, limit: int = 200, offset: int = 0) -> list[User]:
    where, params = ["TRUE"], {"community": community, "role": role, "limit": limit, "offset": offset}
    if community is not None:
        where.append("EXISTS (SELECT 1 FROM user_communities x WHERE x.user_id = u.id AND x.community = %(community)s)")
    if role is not None:
        where.append("u.role = %(role)s")
    sql = _SELECT + f" WHERE {' AND '.join(where)} GROUP BY u.id ORDER BY u.username LIMIT %(limit)s OFFSET %(offset)s"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return [_user(r) for r in await cur.fetchall()]


def validate_username(username: str) -> str:
    if not USERNAME_RE.match(username):
        raise ValueError("username: 2-64 characters, letters, digits and _ . @ - (not first)")
    return username


async def create_user(conn: AsyncConnection[Any], username: str, password: str, role: Role,
                      communities: Iterable[str] = (), *, display_name: str = "",
                      lang: str | None = None, phone: str | None = None) -> User:
    """Create a user (password hashed with Argon2id). Raises UserExists / WeakPassword / ValueError."""
    validate_username(username)
    if (reason := check_strength(password)) is not None:
        raise WeakPassword(f"password: {reason}")
    encoded = await hash_password_async(password)
    try:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(
                "INSERT INTO users (username, role, password_hash, display_name, lang, phone)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (username, role.value, encoded, display_name, lang, phone))
            row = await cur.fetchone()
            assert row is not None
            await _set_communities(conn, row[0], communities)
    except errors.UniqueViolation as exc:
        raise UserExists(f"user {username!r} already exists") from exc
    user = await get_user(conn, row[0])
    assert user is not None
    return user


async def _set_communities(conn: AsyncConnection[Any], user_id: int, communities: Iterable[str]) -> None:
    await conn.execute("DELETE FROM user_communities WHERE user_id = %s", (user_id,))
    rows = [(user_id, c) for c in dict.fromkeys(communities)]
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany("INSERT INTO user_communities (user_id, community) VALUES (%s, %s)", rows)


async def update_user(conn: AsyncConnection[Any], user_id: int, *, role: Role | None = None,
                      communities: Sequence[str] | None = None, display_name: str | None = None,
                      lang: str | None = None, disabled: bool | None = None) -> User:
    """Change what is given; a change of role, communities or disabled state revokes old tokens."""
    sets: list[str] = []
    params: dict[str, Any] = {"id": user_id}
    for column, value in (("role", role.value if role else None), ("display_name", display_name),
                          ("lang", lang), ("disabled", disabled)):
        if value is not None:
            sets.append(f"{column} = %({column})s")
            params[column] = value
    if role is not None or communities is not None or disabled is not None:
        sets.append("token_version = token_version + 1")
    async with conn.transaction():
        if sets:
            cur = await conn.execute(f"UPDATE users SET {', '.join(sets)} WHERE id = %(id)s", params)
            if cur.rowcount == 0:
                raise UserNotFound(f"user {user_id} not found")
        elif await get_user(conn, user_id) is None:
            raise UserNotFound(f"user {user_id} not found")
        if communities is not None:
            await _set_communities(conn, user_id, communities)
    user = await get_user(conn, user_id)
    assert user is not None
    return user


async def set_password(conn: AsyncConnection[Any], user_id: int, password: str) -> None:
    """Replace the password and revoke every token issued before."""
    if (reason := check_strength(password)) is not None:
        raise WeakPassword(f"password: {reason}")
    encoded = await hash_password_async(password)
    cur = await conn.execute(
        "UPDATE users SET password_hash = %s, token_version = token_version + 1 WHERE id = %s",
        (encoded, user_id))
    if cur.rowcount == 0:
        raise UserNotFound(f"user {user_id} not found")


async def rehash_password(conn: AsyncConnection[Any], user_id: int, password: str) -> None:
    """Store a fresh hash after a successful login with outdated parameters (no revocation)."""
    encoded = await hash_password_async(password)
    await conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (encoded, user_id))


async def revoke_tokens(conn: AsyncConnection[Any], user_id: int) -> None:
    await conn.execute("UPDATE users SET token_version = token_version + 1 WHERE id = %s", (user_id,))


async def record_login(conn: AsyncConnection[Any], user_id: int) -> None:
    await conn.execute("UPDATE users SET last_login_at = now() WHERE id = %s", (user_id,))


async def revoke_session(conn: AsyncConnection[Any], user_id: int, jti: str, expires_at: int) -> None:
    """Remember a logged-out web session until its token expires; purge ones that have."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO revoked_sessions (jti, user_id, expires_at) VALUES (%s, %s, to_timestamp(%s))"
            " ON CONFLICT (jti) DO NOTHING", (jti, user_id, expires_at))
        await conn.execute("DELETE FROM revoked_sessions WHERE expires_at < now()")


async def session_revoked(conn: AsyncConnection[Any], jti: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM revoked_sessions WHERE jti = %s", (jti,))
    return await cur.fetchone() is not None
