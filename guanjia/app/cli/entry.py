"""What every command-line entry point of the project does the same way: ``-v`` for debug logging,
and user mistakes (bad config files, missing services) ending with a plain message and a non-zero
exit instead of a traceback — 2 for a config error (each issue as ``file:line: field: message``),
1 for any other :class:`~guanjia.core.errors.GuanjiaError`, 130 for Ctrl-C.

Shared by the ``guanjia`` console script and ``python -m bench`` (which sits beside the product
and may import the app), so both report mistakes identically.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from guanjia.core.errors import ConfigError, GuanjiaError

err = Console(stderr=True, soft_wrap=True)


def verbose_logging(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    """Typer callback: ``app.callback()(verbose_logging)``."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


def run(app: typer.Typer) -> None:
    """Run ``app``; plain messages and exit codes for user mistakes, never a traceback."""
    try:
        app()
    except ConfigError as exc:
        for issue in exc.issues:
            err.print(str(issue), markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except GuanjiaError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
