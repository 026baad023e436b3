"""The web UI: server-rendered Jinja2 pages with vendored htmx and uPlot (no build step).

:func:`cloud.web.app.install` mounts the static files, the page routes and the login redirect
on an existing FastAPI app; :func:`cloud.api.app.create_app` calls it. The data behind the
pages lives in small query modules (``fleet``, ``series``, ``health``, ``inbox``, ``stats``),
each taking an async psycopg connection and the signed-in :class:`~cloud.auth.users.User`, so
the JSON API routers and the pages share one tenant-scoped implementation.
"""
