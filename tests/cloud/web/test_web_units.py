"""Pure pieces of the pages: language choice, catalogs, chart resolution, gateway health keys."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request

from cloud.http.i18n import CATALOGS, pick_lang, translate
from cloud.queries.gateways import GatewayHealth, flatten
from cloud.queries.series import MAX_POINTS, choose


def _request(query: str = "", cookie: str = "", accept: str = "") -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    if accept:
        headers.append((b"accept-language", accept.encode()))
    return Request({"type": "http", "query_string": query.encode(), "headers": headers})


def test_language_choice_order() -> None:
    assert pick_lang(_request()) == "zh"  # the demo community's default
    assert pick_lang(_request(accept="en-US,en;q=0.9")) == "en"
    assert pick_lang(_request(accept="en-US;q=0.5,zh-CN;q=0.9")) == "zh"
    assert pick_lang(_request(accept="fr"), user_lang="en") == "en"
    assert pick_lang(_request(cookie="guanjia_lang=en"), user_lang="zh") == "en"
    assert pick_lang(_request(query="lang=zh", cookie="guanjia_lang=en")) == "zh"
    assert pick_lang(_request(query="lang=xx")) == "zh"


def test_catalogs_are_complete_and_format() -> None:
    assert set(CATALOGS["zh"]) == set(CATALOGS["en"])
    assert translate("en", "resident.sent", id=7) == "Thank you — your report was sent (work order #7)."
    assert translate("zh", "no.such.key") == "no.such.key"


def test_chart_resolution_bounds_points() -> None:
    end = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for span, source in ((dt.timedelta(hours=1), "telemetry"), (dt.timedelta(days=1), "telemetry_1m"),
                         (dt.timedelta(days=30), "telemetry_1h"), (dt.timedelta(days=365), "telemetry_1h"),
                         (dt.timedelta(days=3650), "telemetry_1h")):
        chosen, step = choose(end - span, end)
        assert chosen == source
        assert span / step <= MAX_POINTS
    assert choose(end - dt.timedelta(days=30), end)[1] == dt.timedelta(hours=1)  # 720 points, native


def test_gateway_health_headlines() -> None:
    status = {"outbox": {"depth": 12}, "poll": {"request_time": {"p50_ms": 8.5, "p99_ms": 41.0}},
              "request_errors": 3, "poll_errors": 1, "nested": {"deep": [1, 2]}}
    row = GatewayHealth(1, "gw", "", "c", True, None, 0, None, 0, 0, None, 0, status)
    assert row.queue_depth == 12
    assert row.errors == 4
    assert row.poll_latency == {"poll.request_time.p50_ms": 8.5, "poll.request_time.p99_ms": 41.0}
    assert "nested.deep" not in flatten(status)


def test_every_static_key_of_the_templates_is_in_both_catalogs() -> None:
    """A key written literally in a template (``t('ops.plans')``) exists in Chinese and English: a
    missing one would show the key itself on the page."""
    import re
    from pathlib import Path

    templates = Path(__file__).resolve().parents[3] / "cloud" / "http" / "templates"
    used = {key for path in templates.rglob("*.html")
            for key in re.findall(r"""(?<![\w.])t\('([a-z_.]+)'[,)]""", path.read_text(encoding="utf-8"))}
    assert {"ops.plans", "ops.confirm", "ops.qr_sheet", "ops.measured"} <= used
    assert sorted(used - set(CATALOGS["zh"])) == []
    assert sorted(used - set(CATALOGS["en"])) == []
