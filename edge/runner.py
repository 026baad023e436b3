"""Process entry for ``guanjia edge run``: config + inventory, signals, clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from edge.config import AgentConfig, load_config
from edge.inventory import merge_inventory

log = logging.getLogger(__name__)


def prepare(config_path: Path, inventory: Path | None = None) -> AgentConfig:
    config = load_config(config_path)
    inv = inventory or config.inventory
    if inv is not None:
        config = merge_inventory(config, inv)
    return config


async def run_agent(config_path: Path, inventory: Path | None = None) -> None:
    """Run until SIGINT/SIGTERM; the agent's ``__aexit__`` commits the outbox and saves rule state."""
    from edge.agent import Agent

    config = prepare(config_path, inventory)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Agent(config):
        await stop.wait()
        log.info("stopping (signal received)")
