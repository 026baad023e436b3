"""``guanjia cloud user``: add, list, passwd, disable against a real database."""

from __future__ import annotations

import asyncio

from psycopg import AsyncConnection
from typer.testing import CliRunner

from cloud.auth.passwords import verify_password
from cloud.auth.users import get_login
from guanjia.app.cli.cloud_users import app


def _login(url: str, username: str) -> tuple[bool, str] | None:
    async def run() -> tuple[bool, str] | None:
        async with await AsyncConnection.connect(url) as conn:
            found = await get_login(conn, username)
        return (found[0].disabled, found[1]) if found else None

    return asyncio.run(run())


def test_user_commands(web_db: str) -> None:
    runner = CliRunner()
    db = ["--database-url", web_db]
    result = runner.invoke(app, ["add", "wang", "--role", "engineer", "-c", "cA", "-c", "cB",
                                 "--password", "wang-secret-pw", *db])
    assert result.exit_code == 0, result.output
    assert "created user wang" in result.output
    found = _login(web_db, "wang")
    assert found is not None
    assert verify_password(found[1], "wang-secret-pw")
    assert runner.invoke(app, ["add", "wang", "--role", "engineer", "-c", "cA", "--password", "x" * 12,
                               *db]).exit_code != 0  # duplicate
    bad_role = runner.invoke(app, ["add", "li", "--role", "boss", "-c", "cA", "--password", "li-secret-pw", *db])
    assert bad_role.exit_code != 0
    generated = runner.invoke(app, ["add", "zhao", "--role", "butler", "-c", "cA", "--generate", *db])
    assert "password:" in generated.output
    listing = runner.invoke(app, ["list", *db])
    assert "wang" in listing.output
    assert "zhao" in listing.output
    assert runner.invoke(app, ["passwd", "wang", "--password", "another-secret", *db]).exit_code == 0
    found = _login(web_db, "wang")
    assert found is not None
    assert verify_password(found[1], "another-secret")
    assert runner.invoke(app, ["disable", "wang", *db]).exit_code == 0
    assert _login(web_db, "wang") == (True, found[1])
