"""The API security tests reuse the web tests' fixtures (real app, real PostgreSQL, real users)."""

from tests.cloud.web.conftest import (  # noqa: F401 - fixtures are found by name
    app,
    client,
    make_user,
    pool,
    settings,
    web_db,
    web_template,
)
