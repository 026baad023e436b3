"""``guanjia profiles show`` for every transport: a box family's code tables, an ISAPI controller's
event table, and every built-in profile prints without error."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from device_profiles import builtin_profiles
from guanjia.app.cli.main import app


@pytest.mark.parametrize("profile", sorted(builtin_profiles()))
def test_show_every_builtin(profile: str) -> None:
    result = CliRunner().invoke(app, ["profiles", "show", profile])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{profile}: ")


def test_show_box_codes_and_isapi_events() -> None:
    box = CliRunner().invoke(app, ["profiles", "show", "lift-box-b"]).output
    assert "30→passengers_trapped" in box
    assert "json err" in box
    acs = CliRunner().invoke(app, ["profiles", "show", "hikvision-isapi-acs"]).output
    assert "event 5:27" in acs
    assert "forced_open=True" in acs
