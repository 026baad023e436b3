"""Many edge agents in one process, for the ``fleet`` bench: ``python -m bench.fleet_agents CONFIG…``.

Each agent is the product's own :class:`edge.agent.Agent` started from its own file with its
own last good version (:func:`edge.managed.effective_config`), exactly as ``guanjia edge run``
does; only the process is shared, so a 2-core machine can hold a hundred gateways.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from edge.agent import Agent
from edge.config import load_config
from edge.managed import effective_config


async def main(paths: list[Path]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        for path in paths:
            base = load_config(path)
            config, state = effective_config(base)
            await stack.enter_async_context(Agent(config, base=base, managed_state=state))
        logging.getLogger(__name__).warning("%d agents up", len(paths))
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main([Path(p) for p in sys.argv[1:]]))
