"""``python -m bench``: the benchmark command line beside the product (not ``guanjia bench``)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bench.__main__ import BENCHES, app
from guanjia.app.cli.main import app as product_app


def test_every_benchmark_all_and_the_evaluation_are_sub_commands() -> None:
    assert {command.name for command in app.registered_commands} == {*BENCHES, "all", "analytics-eval"}
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output


def test_the_product_cli_has_no_bench_command() -> None:
    result = CliRunner().invoke(product_app, ["bench", "rules"])
    assert result.exit_code != 0
    assert "No such command" in result.output


def test_a_quick_benchmark_writes_its_flat_json(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    result = CliRunner().invoke(app, ["rules", "--quick", "--json", str(path)])
    assert result.exit_code == 0, result.output
    figures = json.loads(path.read_text())
    assert figures
    assert result.output.startswith("rules: ")


def test_the_evaluation_refuses_equal_seeds() -> None:
    result = CliRunner().invoke(app, ["analytics-eval", "--train-seed", "3", "--eval-seed", "3"])
    assert result.exit_code != 0
    assert "seeds must differ" in result.output
