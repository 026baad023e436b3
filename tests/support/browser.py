"""Playwright on the system Chromium for the page tests: where the browser is, how it is started,
and the marks that skip a test with a reason when Playwright or Chromium is missing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

try:
    from playwright.async_api import async_playwright as _found
except ImportError:  # pragma: no cover - dev extra not installed
    _found = None  # type: ignore[assignment]

BROWSER_MARKS: list[Any] = [
    pytest.mark.skipif(_found is None, reason="playwright is not installed (pip install -e '.[dev]')"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install "
                                                            "chromium); Playwright cannot download browsers here"),
    pytest.mark.slow,
]


async def sign_in(page: Any, base: str, username: str, password: str) -> None:
    """Sign in through the login form, as a person does, and wait for the first page."""
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
