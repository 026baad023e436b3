"""``guanjia cloud``: commands of the cloud part (filled in by its issue)."""

from __future__ import annotations

import typer

app = typer.Typer(help="cloud commands.", no_args_is_help=True)
