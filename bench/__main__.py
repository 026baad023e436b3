"""``python -m bench``: run benchmarks (one, or ``all``) and the labelled analytics evaluation.

Benchmarks, the chaos harness and the evaluation fleets sit beside the product, not in its wheel
(issue 16), so they have their own command line instead of a ``guanjia bench`` sub-command: the
product CLI must not import a package the wheel does not ship. The sub-commands and options are
the ones ``python -m bench NAME`` had — ``all``, each benchmark by name (``chaos`` with
``--scenario``), ``--json FILE``, ``--results-dir``, ``--quick`` — and every benchmark writes the
same flat JSON figures. ``analytics-eval`` is what ``guanjia cloud analytics evaluate`` was.

Benchmarks are registered by real imports (:data:`BENCHES`), never by module-name strings, so a
renamed or broken benchmark fails at start-up instead of being skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from bench import alarm, analytics, chaos, edge, fleet, ingest, ingest_smoke, reports, rules, soak, web
from guanjia.app.cli.entry import run, verbose_logging
from guanjia.core.errors import GuanjiaError

BENCHES: dict[str, Callable[..., dict[str, Any]]] = {
    "alarm": alarm.run,
    "web": web.run,
    "ingest-smoke": ingest_smoke.run,
    "ingest": ingest.run,
    "analytics": analytics.run,
    "edge": edge.run,
    "rules": rules.run,
    "chaos": chaos.run,
    "soak": soak.run,
    "reports": reports.run,
    "fleet": fleet.run,
}
"""Benchmark name → ``run(quick=...)`` (chaos also takes ``only=[scenario, ...]``)."""

HELP: dict[str, str] = {
    "alarm": "Fault → work order committed → the butler's SSE message (1,000 devices, 100 faults).",
    "web": "Dashboard and API server time with 1,000 devices and 30 days of history.",
    "ingest-smoke": "Simulated readings through edge → broker → cloud → database, counted exactly.",
    "ingest": "Publish → committed rows, end to end, against raw binary COPY.",
    "analytics": "Predictive maintenance on the product path: the service schedule over seeds × start dates.",
    "edge": "Edge agent: acquisition throughput on one core, a 10-minute broker outage, a DL/T 645 fleet.",
    "rules": "Cost of the shipped rule sets on the edge's load.",
    "soak": "The demo-sized fleet at speed for a bounded time; memory and queues.",
    "reports": "The monthly manager report of 200 communities / 10,000 devices with 30 days of data.",
    "fleet": "Configuration rollout to 100 gateways (staged, with a rollback) and command round trips.",
}

app = typer.Typer(
    name="bench",
    help="guanjia benchmarks, chaos harness and labelled analytics evaluation (not part of the product).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()  # the benchmark summaries, printed as ``guanjia bench`` printed them
report = Console(soft_wrap=True)  # the evaluation's explanations are sentences: never hard-wrap them

JsonOption = typer.Option(None, "--json", help="Write the figures here (one benchmark).")
ResultsOption = typer.Option(Path("bench/results"), help="Where 'all' writes NAME.json files.")
QuickOption = typer.Option(False, help="A shorter run (CI smoke), same keys.")


app.callback()(verbose_logging)


def _summary(name: str, figures: dict[str, Any]) -> str:
    return f"{name}: " + " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())


def _run(names: list[str], *, json_path: Path | None, results_dir: Path, quick: bool,
         scenario: list[str] | None = None) -> None:
    """Run ``names`` in order; print a one-line summary each and write its flat JSON figures.

    With several names (``all``) one broken benchmark must not hide the others' figures: it is
    logged, reported and the run fails at the end; a single benchmark raises straight away.
    """
    failed: list[str] = []
    for one in names:
        try:
            figures = BENCHES[one](quick=quick, only=scenario) if scenario else BENCHES[one](quick=quick)
        except Exception as exc:
            if len(names) == 1:
                raise
            logging.getLogger(__name__).exception("benchmark %s failed", one)
            out.print(f"{one}: FAILED ({exc})", markup=False, highlight=False)
            failed.append(one)
            continue
        path = json_path if (json_path and len(names) == 1) else results_dir / f"{one}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2) + "\n")
        out.print(_summary(one, figures), markup=False, highlight=False)
    if failed:
        raise GuanjiaError(f"benchmarks failed: {', '.join(failed)}")


@app.command("all")
def run_all(results_dir: Path = ResultsOption, quick: bool = QuickOption) -> None:
    """Run every benchmark; write NAME.json files into --results-dir."""
    _run(sorted(BENCHES), json_path=None, results_dir=results_dir, quick=quick)


def _single(name: str) -> Callable[..., None]:
    def command(json_path: Path | None = JsonOption, results_dir: Path = ResultsOption,
                quick: bool = QuickOption) -> None:
        _run([name], json_path=json_path, results_dir=results_dir, quick=quick)

    return command


for _name, _help in HELP.items():
    app.command(_name, help=_help)(_single(_name))


@app.command("chaos")
def run_chaos(
    json_path: Path | None = JsonOption,
    results_dir: Path = ResultsOption,
    quick: bool = QuickOption,
    scenario: list[str] = typer.Option([], "--scenario", help="Run just this scenario (repeatable)."),
) -> None:
    """The fault-injection suite (broker, database, edge, ingest, network, devices)."""
    _run(["chaos"], json_path=json_path, results_dir=results_dir, quick=quick, scenario=scenario)


@app.command("analytics-eval")
def analytics_eval(
    devices: int = typer.Option(220, min=10, help="Evaluation fleet size."),
    days: int = typer.Option(42, min=20, help="Simulated days (the first --warmup-days train the baselines)."),
    warmup_days: int = typer.Option(14, min=7),
    train_seed: int = typer.Option(1),
    eval_seed: int = typer.Option(2),
    train_devices: int | None = typer.Option(160, help="Training fleet size (default 160)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the flat figures here."),
    write_limits: Path | None = typer.Option(None, help="Write the calibrated fleet limits (limits.json)."),
) -> None:
    """Labelled evaluation: calibrate on one simulated fleet, score another; print the table.

    What ``guanjia cloud analytics evaluate`` was (same options, same output); ``--write-limits
    cloud/analytics/limits.json`` is how the product's shipped fleet limits are calibrated.
    """
    from bench.analytics_eval import run_evaluation
    from bench.analytics_scoring import render_table

    if train_seed == eval_seed:
        raise typer.BadParameter("training and evaluation seeds must differ (an honest score)")
    result = run_evaluation(devices=devices, days=days, warmup_days=warmup_days, train_seed=train_seed,
                            eval_seed=eval_seed, train_devices=train_devices)
    report.print(f"{result.devices} devices, {result.simulated_days} simulated days, train seed {train_seed}, "
              f"eval seed {eval_seed}", markup=False)
    report.print(render_table(result.report), markup=False)
    for det in result.report.unmatched[:30]:
        raised = dt.datetime.fromtimestamp(det.detected_ms / 1000, dt.UTC)
        report.print(f"unmatched: {det.device} {det.detector} at {raised:%m-%d %H:%M} score {det.score:.2f}: "
                  f"{det.message}", markup=False)
    for label in result.report.missed[:30]:
        report.print(f"missed: {label.device} {label.fault} from "
                  f"{dt.datetime.fromtimestamp(label.start_ms / 1000, dt.UTC):%m-%d %H:%M}", markup=False)
    figures = {"devices": result.devices, "simulated_days": result.simulated_days} | result.report.flat()
    if json_path:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")
    if write_limits:
        from cloud.analytics.modelstore import to_json_safe

        write_limits.write_text(json.dumps(to_json_safe(result.fleet_params), indent=2, sort_keys=True) + "\n")
        report.print(f"limits written to {write_limits}", markup=False)


def main() -> None:
    """Plain messages for user mistakes, as the ``guanjia`` entry point gives them."""
    run(app)


if __name__ == "__main__":
    main()
