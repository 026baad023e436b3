"""Jinja2 environment of the pages: translations, CSRF token, formatting helpers."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from cloud.auth.deps import auth_state
from cloud.auth.users import User
from cloud.http.i18n import LANG_COOKIE, LANGS, pick_lang, translate
from guanjia.core.lang import in_lang

CST = dt.timezone(dt.timedelta(hours=8))
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), enable_async=False,
                  auto_reload=False)


def _ago(moment: dt.datetime | None, lang: str, now: dt.datetime) -> str:
    """How long ago, from the request's ``now`` (the app's clock, so pages render the same under test)."""
    if moment is None:
        return translate(lang, "common.never")
    seconds = int((now - moment).total_seconds())
    if abs(seconds) < 90:
        return f"{seconds} s"
    if abs(seconds) < 5400:
        return f"{seconds // 60} {translate(lang, 'minutes')}"
    if abs(seconds) < 172800:
        return f"{seconds // 3600} {translate(lang, 'hours')}"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d")


def local_time(moment: dt.datetime | None, tz: str | None = None) -> str:
    """A time in the community's zone (``tz``, IANA name), 24-hour; China Standard Time (UTC+8,
    the demo communities' zone) when the page does not know the community."""
    if moment is None:
        return "—"
    return moment.astimezone(_zone(tz)).strftime("%m-%d %H:%M")


@functools.cache
def _zone(tz: str | None) -> dt.tzinfo:
    try:
        return ZoneInfo(tz) if tz else CST
    except (ZoneInfoNotFoundError, ValueError):
        return CST


def _duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "—"
    minutes = float(seconds) / 60
    if minutes < 120:
        return f"{minutes:.0f} {translate(lang, 'minutes')}"
    return f"{minutes / 60:.1f} {translate(lang, 'hours')}"


def _pct(value: object) -> str:
    return "—" if value is None else f"{float(value) * 100:.0f}%"  # type: ignore[arg-type]


def _num(value: object) -> str:
    if value is None:
        return "—"
    number = float(value)  # type: ignore[arg-type]
    return f"{number:,.0f}" if abs(number) >= 100 else f"{number:,.2f}"


# Scripts only from this origin (no inline script, no eval): an injected string cannot run.
# Inline styles stay allowed for uPlot and the rating bars.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'self'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def render(request: Request, template: str, user: User | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    lang = pick_lang(request, user.lang if user else None)
    csrf = ""
    jti = getattr(request.state, "session_jti", None)
    if jti:
        csrf = auth_state(request).tokens.csrf_token(jti)

    def t(key: str, **values: object) -> str:
        return translate(lang, key, **values)

    now: dt.datetime = context.pop("now", None) or request.app.state.clock.now()
    html = env.get_template(template).render(
        request=request, user=user, lang=lang, langs=LANGS, csrf_token=csrf, t=t, now=now,
        ago=lambda m: _ago(m, lang, now), local=local_time, duration=lambda s: _duration(s, lang), pct=_pct, num=_num,
        path=request.url.path, tr=lambda en, zh: in_lang(lang, en, zh), **context)
    response = HTMLResponse(html, status_code=status_code)
    asked = request.query_params.get("lang")
    if asked in LANGS:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, samesite="lax", httponly=True)
    response.headers.update(SECURITY_HEADERS)
    return response
