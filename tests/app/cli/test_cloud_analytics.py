"""``guanjia cloud analytics`` commands against a real database."""

from __future__ import annotations

from typer.testing import CliRunner

from guanjia.app.cli.main import app


def test_train_score_models_commands(analytics_db: str) -> None:
    runner = CliRunner()
    url = ["--database-url", analytics_db]
    result = runner.invoke(app, ["cloud", "analytics", "train", *url])
    assert result.exit_code == 0, result.output
    assert "no model trained" in result.output
    result = runner.invoke(app, ["cloud", "analytics", "score", *url, "--now", "2026-01-15T00:00:00+00:00"])
    assert result.exit_code == 0, result.output
    assert "scored 0 devices: 0 new detections" in result.output
    result = runner.invoke(app, ["cloud", "analytics", "models", *url])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["cloud", "analytics", "evaluate"])
    assert result.exit_code != 0  # the labelled evaluation is `python -m bench analytics-eval` (tests/bench)


def test_replay_demo_command_tells_the_story(analytics_db: str) -> None:
    result = CliRunner().invoke(app, ["cloud", "analytics", "replay-demo", "--database-url", analytics_db,
                                      "--community", "demo-cli", "--now", "2026-12-05T12:30:00+00:00"])
    assert result.exit_code == 0, result.output
    assert "more current than usual for this pressure" in result.output
    assert " P3 " in result.output
    assert "simulated days after the planned work order" in result.output
