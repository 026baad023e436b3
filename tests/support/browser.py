"""What the Playwright page tests share: the Debian Chromium they drive (Playwright cannot download
browsers here), its flags, where screenshots go, and the marks that skip a module with a reason when
Playwright or Chromium is missing (``pytestmark = BROWSER_MARKS``)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

BROWSER_MARKS = [
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="playwright is not installed (pip install -e '.[dev]')"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install "
                                                            "chromium); Playwright cannot download browsers here"),
    pytest.mark.slow,
]


async def draw_signature(page: Any, canvas: str = "#signature-pad") -> None:
    """A zig-zag drawn with the pointer on the signature canvas (pointer events, as a finger would)."""
    box = await page.locator(canvas).bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + 20, box["y"] + 60)
    await page.mouse.down()
    for step in range(1, 12):
        await page.mouse.move(box["x"] + 20 + step * 22, box["y"] + 60 + (15 if step % 2 else -15))
    await page.mouse.up()
