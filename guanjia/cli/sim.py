"""``guanjia sim``: commands of the sim part (filled in by its issue)."""

from __future__ import annotations

import typer

app = typer.Typer(help="sim commands.", no_args_is_help=True)
