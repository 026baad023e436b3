"""``guanjia edge``: commands of the edge part (filled in by its issue)."""

from __future__ import annotations

import typer

app = typer.Typer(help="edge commands.", no_args_is_help=True)
