"""``guanjia bench NAME --json FILE``: run one benchmark (or ``all``) and write its JSON figures."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from guanjia.core.errors import GuanjiaError

out = Console()


def _load(name: str) -> Any:
    from bench import REGISTRY

    if name not in REGISTRY:
        raise GuanjiaError(f"unknown benchmark {name!r}; known: {', '.join(sorted(REGISTRY))}")
    module, func = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), func)


def _summary(name: str, figures: dict[str, Any]) -> str:
    return f"{name}: " + " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())


def bench(
    name: str = typer.Argument(..., help="Benchmark name, or 'all'."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the figures here (one benchmark)."),
    results_dir: Path = typer.Option(Path("bench/results"), help="Where 'all' writes NAME.json files."),
    quick: bool = typer.Option(False, help="A shorter run (CI smoke), same keys."),
    scenario: list[str] = typer.Option(
        [], "--scenario", help="chaos only: run just this scenario (repeatable)."),
) -> None:
    """Run a benchmark; print a one-line summary and write flat JSON figures."""
    from bench import REGISTRY

    if scenario and name != "chaos":
        raise GuanjiaError("--scenario selects chaos scenarios: use it with 'guanjia bench chaos'")
    names = sorted(REGISTRY) if name == "all" else [name]
    failed: list[str] = []
    for one in names:
        try:
            figures = _load(one)(quick=quick, only=scenario) if scenario else _load(one)(quick=quick)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            if name != "all":
                raise
            logging.getLogger(__name__).exception("benchmark %s failed", one)
            out.print(f"{one}: FAILED ({exc})", markup=False, highlight=False)
            failed.append(one)
            continue
        path = json_path if (json_path and name != "all") else results_dir / f"{one}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2) + "\n")
        out.print(_summary(one, figures), markup=False, highlight=False)
    if failed:
        raise GuanjiaError(f"benchmarks failed: {', '.join(failed)}")
