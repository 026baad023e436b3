"""The web UI: server-rendered Jinja2 pages with vendored htmx and uPlot (no build step).

:data:`cloud.web.pages.router` serves the static files, the page routes and the login redirect;
:func:`cloud.app.create_app` includes it. The data behind the pages lives in the read models
of :mod:`cloud.queries` (``fleet``, ``series``, ``health``, ``history``, ``stats`` …), each taking
an async psycopg connection and the signed-in :class:`~cloud.auth.users.User`, so the JSON API
routers and the pages share one tenant-scoped implementation. The Jinja environment, templates and
static files are in :mod:`cloud.http` (the API's error handler renders the error page too).
"""
