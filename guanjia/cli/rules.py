"""``guanjia rules``: commands of the rules part (filled in by its issue)."""

from __future__ import annotations

import typer

app = typer.Typer(help="rules commands.", no_args_is_help=True)
