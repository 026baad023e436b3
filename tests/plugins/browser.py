"""Fixtures of the Playwright tests (a ``pytest_plugins`` module): the real app served by uvicorn
on a free port (``live_server``) and a headless Debian Chromium (``chromium``). Skip marks and
the login helper: ``tests/support/browser.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI

from guanjia.core.ports import free_port
from tests.support.browser import ARGS, CHROMIUM

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest.fixture
async def live_server(app: FastAPI) -> AsyncIterator[str]:
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                        timeout_graceful_shutdown=1))
    task = asyncio.create_task(srv.serve())
    for _ in range(200):
        if srv.started:
            break
        await asyncio.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 10)
        for name in ("inbox_hub", "resident_hub"):  # the live streams' LISTEN tasks, started on first use
            hub = getattr(app.state, name, None)
            if hub is not None:
                hub.stop_detached()


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()
