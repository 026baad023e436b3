"""Entry point of the ``guanjia`` console script.

User mistakes (bad config files, missing services) end with a plain message and a non-zero exit,
never a traceback: every :class:`~guanjia.core.errors.GuanjiaError` is caught here.
"""

from __future__ import annotations

import typer

from guanjia.app.cli import cloud, demo, edge, profiles, rules, sim, stack
from guanjia.app.cli.entry import run, verbose_logging

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

app.callback()(verbose_logging)


def main() -> None:
    run(app)


if __name__ == "__main__":
    main()
