"""``guanjia cloud user``: create and manage users (admin, engineer, butler, resident).

Registered under ``guanjia cloud`` as the ``user`` sub-command group. Passwords are asked for
(hidden) when not given; ``--generate`` prints a random one once.
"""

from __future__ import annotations

import asyncio
import secrets

import typer
from rich.console import Console
from rich.table import Table

from guanjia.app.cli import options
from guanjia.app.cli.options import DbOption

app = typer.Typer(help="users, roles and communities (tenants).", no_args_is_help=True)
out = Console()


@app.command("add")
def add(
    username: str = typer.Argument(..., help="login name: letters, digits, _ . @ -"),
    role: str = typer.Option(..., "--role", "-r", help="admin | engineer | butler | resident"),
    community: list[str] = typer.Option([], "--community", "-c", help="community id; repeat for several"),
    display_name: str = typer.Option("", "--name", help="name shown in the pages"),
    lang: str | None = typer.Option(None, "--lang", help="zh | en"),
    password: str | None = typer.Option(None, "--password", help="the password (asked for when omitted)"),
    generate: bool = typer.Option(False, "--generate", help="generate a random password and print it once"),
    database_url: str | None = DbOption,
) -> None:
    """Create a user."""
    from cloud.auth.errors import AuthError
    from cloud.auth.roles import Role
    from cloud.auth.users import create_user
    from cloud.db.pool import connect_async
    from guanjia.core.errors import ConfigError, ConfigIssue

    try:
        role_value = Role(role)
    except ValueError:
        raise ConfigError([ConfigIssue("command line", None, "--role",
                                       f"must be one of {', '.join(r.value for r in Role)}")]) from None
    if role_value is not Role.admin and not community:
        raise ConfigError([ConfigIssue("command line", None, "--community",
                                       f"a {role} belongs to at least one community")])
    if generate:
        password = secrets.token_urlsafe(12)
    elif password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    url = options.database_url(database_url)

    async def _run() -> int:
        async with connect_async(url) as conn:
            user = await create_user(conn, username, password, role_value, community,
                                     display_name=display_name, lang=lang)
            await conn.commit()
            return user.id

    try:
        user_id = asyncio.run(_run())
    except (AuthError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    out.print(f"created user {username} (id {user_id}, role {role_value}, communities {', '.join(community) or 'all'})")
    if generate:
        out.print(f"password: {password}  (shown once)")


@app.command("list")
def list_(community: str | None = typer.Option(None, "--community", "-c"), database_url: str | None = DbOption) -> None:
    """List users."""
    from cloud.auth.users import User, list_users
    from cloud.db.pool import connect_async

    url = options.database_url(database_url)

    async def _run() -> list[User]:
        async with connect_async(url) as conn:
            return await list_users(conn, community=community, limit=10_000)

    table = Table("id", "username", "role", "communities", "name", "disabled")
    for u in asyncio.run(_run()):
        table.add_row(str(u.id), u.username, u.role.value, ", ".join(u.communities) or "*", u.display_name,
                      "yes" if u.disabled else "")
    out.print(table)


@app.command("passwd")
def passwd(username: str, password: str | None = typer.Option(None, "--password"),
           database_url: str | None = DbOption) -> None:
    """Set a user's password (revokes their tokens and sessions)."""
    from cloud.auth.errors import AuthError
    from cloud.auth.users import get_login, set_password
    from cloud.db.pool import connect_async

    if password is None:
        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    url = options.database_url(database_url)

    async def _run() -> None:
        async with connect_async(url) as conn:
            found = await get_login(conn, username)
            if found is None:
                raise typer.BadParameter(f"no user {username!r}")
            await set_password(conn, found[0].id, password)
            await conn.commit()

    try:
        asyncio.run(_run())
    except AuthError as exc:
        raise typer.BadParameter(str(exc)) from exc
    out.print(f"password of {username} changed")


@app.command("disable")
def disable(username: str, enable: bool = typer.Option(False, "--enable", help="re-enable instead"),
            database_url: str | None = DbOption) -> None:
    """Disable (or re-enable) a user; disabling revokes their tokens at once."""
    from cloud.auth.users import get_login, update_user
    from cloud.db.pool import connect_async

    url = options.database_url(database_url)

    async def _run() -> None:
        async with connect_async(url) as conn:
            found = await get_login(conn, username)
            if found is None:
                raise typer.BadParameter(f"no user {username!r}")
            await update_user(conn, found[0].id, disabled=not enable)
            await conn.commit()

    asyncio.run(_run())
    out.print(f"{username} {'enabled' if enable else 'disabled'}")
