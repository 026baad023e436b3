"""Authentication and authorisation of the cloud: users, roles, tenants, tokens, login limits.

Why a package of its own: every router (devices, telemetry, alarms, work orders, inbox, pages)
depends on the same three questions — *who is calling*, *may this role do that*, and *which
communities (tenants) may they see* — and the answers must be identical everywhere. The FastAPI
side of it lives in :mod:`cloud.auth.deps` and is re-exported from :mod:`cloud.api.deps`.

Model:

* a user has exactly one :class:`~cloud.auth.roles.Role` (admin, engineer, butler, resident) and
  belongs to one or more communities; ``admin`` sees every community;
* API clients use the OAuth2 password flow (``POST /api/v1/auth/token``) and get a short-lived
  JWT access token; the web pages use the same JWT kind of token in an HttpOnly session cookie,
  plus a CSRF token for unsafe requests made with that cookie;
* every token carries the user's ``token_version``: bumping it (password change, disable,
  logout-everywhere) revokes every token issued before.
"""
