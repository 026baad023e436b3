"""The one JSON error shape of the API: ``{"error": {"code": str, "message": str, "detail": any}}``.

Every failure — validation, HTTPException from a router, a storage outage, an unexpected bug —
leaves the API in this shape, so clients (the dashboard, scripts) parse one thing. ``code`` is a
stable machine-readable word (``not_found``, ``invalid_request``, ``unavailable`` …).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.errors import StorageError

log = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 422: "invalid_request", 429: "rate_limited", 503: "unavailable"}


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
    422: {"model": ErrorBody, "description": "invalid request; detail lists {loc, msg}"},
}


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if isinstance(detail, dict) and "code" in detail:
            body = error_body(str(detail["code"]), str(detail.get("message", "")), detail.get("detail"))
        else:
            body = error_body(_CODES.get(exc.status_code, "error"), str(detail))
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse(error_body("invalid_request", "request is invalid", detail), status_code=422)

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError) -> JSONResponse:
        log.warning("storage unavailable for %s: %s", request.url.path, exc)
        return JSONResponse(error_body("unavailable", "database unavailable", str(exc)[:300]), status_code=503)
