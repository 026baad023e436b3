"""Entry point of the ``guanjia`` console script.

User mistakes (bad config files, missing services) end with a plain message and a non-zero exit,
never a traceback: every :class:`~guanjia.core.errors.GuanjiaError` is caught here.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from guanjia.app.cli import cloud, demo, edge, profiles, rules, sim, stack
from guanjia.core.errors import ConfigError, GuanjiaError

app = typer.Typer(
    name="guanjia",
    help="guanjia (管家): IoT edge gateway and cloud platform for residential property management.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(profiles.app, name="profiles")
app.add_typer(rules.app, name="rules")
app.add_typer(sim.app, name="sim")
app.add_typer(edge.app, name="edge")
app.add_typer(cloud.app, name="cloud")
app.command("demo")(demo.demo)

err = Console(stderr=True, soft_wrap=True)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


def main() -> None:
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


if __name__ == "__main__":
    main()
