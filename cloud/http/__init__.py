"""What the two HTTP front-ends share, one layer below both: the JSON API (``cloud.api``) and the
pages (``cloud.web``) are independent siblings, yet both need the app's dependencies and the
HTML look of the site.

* :mod:`cloud.http.deps` — the app-state dependencies (pool, metrics, clock, work-order policy).
* :mod:`cloud.http.rendering`, :mod:`cloud.http.i18n`, ``templates/``, ``static/`` — the one
  Jinja environment and its translations. They live here, not in ``cloud.web``, because the API's
  error handler (:mod:`cloud.api.errors`) answers a failing *page* path with the HTML error page:
  if rendering stayed in ``cloud.web`` the api would import the web and the two could not be
  read, tested or changed alone.

No routes and no SQL here: a route belongs to the api or the web, a query to ``cloud.queries``.
"""
