"""The one JSON error shape of the API: ``{"error": {"code": str, "message": str, "detail": any}}``.

Every failure — validation, HTTPException from a router, a storage outage, an unexpected bug —
leaves the API in this shape, so clients (the dashboard, scripts) parse one thing. ``code`` is a
stable machine-readable word (``not_found``, ``invalid_request``, ``unavailable`` …). The pages
(every path outside ``/api/`` that is not a redirect) get the same status with the HTML error
page instead, in the visitor's language.

* A storage outage (:class:`~cloud.runtime.errors.StorageUnavailable`, mapped at the pool) → **503**
  ``unavailable`` with ``Retry-After``; a value the database refuses
  (:class:`~cloud.runtime.errors.StorageRejected`) → **422** ``invalid_request``.
* A NUL byte in the path, the query string or a header → **400** ``bad_request`` before any
  handler runs (:class:`RejectNul`): nothing downstream (file paths, PostgreSQL text) accepts one.
  NUL bytes inside JSON or form bodies reach the database boundary and come back as 422.
* Anything else unexpected → **500** ``internal_error`` in the same shape; the traceback goes to
  the log only.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from cloud.runtime.errors import StorageError, StorageRejected

log = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 422: "invalid_request", 429: "rate_limited", 500: "internal_error",
          503: "unavailable"}
#: the page's message key per status (the others show the message itself)
_PAGE_KEYS = {400: "error.bad_request", 401: "error.unauthorized", 403: "error.forbidden", 404: "error.not_found",
              405: "error.bad_request", 422: "error.bad_request", 500: "error.internal",
              503: "error.unavailable"}
RETRY_AFTER_S = 5
"""What a 503 tells clients to wait: the pool reconnects in the background within seconds."""


class ErrorInfo(BaseModel):
    code: str = Field(description="stable machine-readable word: not_found, unauthorized, invalid_request …")
    message: str = Field(description="human-readable explanation")
    detail: Any = Field(default=None, description="extra data, e.g. the invalid fields of a 422")


class ErrorBody(BaseModel):
    """The one error shape of the API."""

    error: ErrorInfo


#: documented on every route (``create_app`` includes routers with it), so the OpenAPI schema
#: describes what clients really receive
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "not authenticated, or the token expired/was revoked"},
    403: {"model": ErrorBody, "description": "authenticated, but the role may not do this"},
    404: {"model": ErrorBody, "description": "not found (also: another community's resource)"},
    422: {"model": ErrorBody, "description": "invalid request; detail lists {loc, msg, type}"},
}


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and request.url.path not in ("/healthz", "/metrics")


def respond(request: Request, status_code: int, body: dict[str, Any],
            headers: dict[str, str] | None = None) -> Response:
    """The JSON error shape, or the HTML error page for a page path."""
    if _is_page(request):
        from cloud.http.rendering import render

        info = body["error"]
        key = _PAGE_KEYS.get(status_code)
        response: Response = render(request, "error.html", getattr(request.state, "user", None), status_code,
                                    message_key=key or "error.bad_request", message=None if key else info["message"])
        response.headers.update(headers or {})
        return response
    return JSONResponse(body, status_code=status_code, headers=headers)


def install(app: FastAPI) -> None:
    app.add_middleware(RejectNul)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail
        if isinstance(detail, dict) and "code" in detail:
            body = error_body(str(detail["code"]), str(detail.get("message", "")), detail.get("detail"))
        else:
            body = error_body(_CODES.get(exc.status_code, "error"), str(detail))
        headers = getattr(exc, "headers", None)
        if exc.status_code < 400:  # a redirect (page login): Location does the work
            return JSONResponse(body, status_code=exc.status_code, headers=headers)
        return respond(request, exc.status_code, body, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # ``type`` (pydantic's error type: missing, greater_than_equal …) lets a page word the
        # message in its own language; ``msg`` stays the English explanation
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return respond(request, 422, error_body("invalid_request", "request is invalid", detail))

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError) -> Response:
        if isinstance(exc, StorageRejected):
            return respond(request, 422, error_body("invalid_request", "a value of the request is not acceptable",
                                                    str(exc)[:300]))
        log.warning("storage unavailable for %s: %s", request.url.path, exc)
        return respond(request, 503, error_body("unavailable", "database unavailable, retry shortly", str(exc)[:300]),
                       {"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.error("unhandled error for %s %s", request.method, request.url.path, exc_info=exc)
        return respond(request, 500, error_body("internal_error", "internal error"))


class RejectNul:
    """ASGI middleware: a NUL byte (raw or ``%00``) in the path, the query string or a header is
    a 400 in the error shape before routing. File paths (``/static``, photos) and PostgreSQL text
    cannot hold one, and today's 500s came from exactly there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            body = error_body("bad_request", "NUL byte in the request")
            path = str(scope.get("path", "")).replace("\x00", "")
            if path.startswith("/api/") or path in ("/healthz", "/metrics"):
                response: Response = JSONResponse(body, status_code=400)
            else:
                from cloud.http.rendering import render

                request = Request({**scope, "path": path, "query_string": b""}, receive)
                response = render(request, "error.html", None, 400, message_key="error.bad_request")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _has_nul(scope: Scope) -> bool:
    if "\x00" in str(scope.get("path", "")) or b"\x00" in bytes(scope.get("raw_path") or b""):
        return True
    if b"%00" in bytes(scope.get("raw_path") or b"").lower():
        return True
    query = bytes(scope.get("query_string") or b"")
    if b"\x00" in query or b"%00" in query:
        return True
    return any(b"\x00" in value for _name, value in scope.get("headers", ()))
