"""``guanjia profiles``: commands of the profiles part (filled in by its issue)."""

from __future__ import annotations

import typer

app = typer.Typer(help="profiles commands.", no_args_is_help=True)
