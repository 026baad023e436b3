"""Helpers of the Playwright tests: where Debian's Chromium is, its flags, the skip marks, and a
login through the real form. The fixtures (``live_server``, ``chromium``) are in
``tests/plugins/browser.py``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.webapp import Login

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

try:
    import playwright.async_api as _playwright
except ImportError:  # pragma: no cover - dev extra not installed
    _playwright = None  # type: ignore[assignment]

#: put on a browser test module as ``pytestmark``
BROWSER_MARKS = [
    pytest.mark.skipif(_playwright is None, reason="playwright is not installed (pip install -e '.[dev]')"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install "
                                                            "chromium); Playwright cannot download browsers here"),
    pytest.mark.slow,
]


async def login(browser: Browser, base: str, who: Login, *, locale: str = "zh-CN", width: int = 1280,
                height: int = 900, mobile: bool = False, timezone_id: str | None = None) -> Page:
    """A new page (desktop-sized unless told) signed in as ``who`` through the login form;
    ``mobile`` a phone with touch, ``timezone_id`` the browser's own zone (to show that pages keep
    the community's)."""
    context = await browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                        timezone_id=timezone_id, is_mobile=mobile, has_touch=mobile)
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", who.user.username)
    await page.fill("input[name=password]", who.password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
    return page


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
