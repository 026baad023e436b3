"""Pure logic of the shared core: config errors with lines, backoff, settings (the wire contract is
tested in tests/core/test_wire.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from guanjia.core.backoff import Backoff
from guanjia.core.config import load_model
from guanjia.core.errors import ConfigError
from guanjia.core.settings import MqttUrl, Settings


class _Point(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    address: int


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    points: list[_Point]


def test_config_error_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("id: x\npoints:\n  - name: a\n    address: 1\n  - name: b\n    adress: 2\n")
    with pytest.raises(ConfigError) as exc:
        load_model(_Doc, path)
    lines = [str(i) for i in exc.value.issues]
    assert f"{path}:6: points.1.adress: unknown field (check the spelling)" in lines
    assert f"{path}:5: points.1.address: field required" in lines


def test_config_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\npoints: [\n  {name: a\n")
    with pytest.raises(ConfigError) as exc:
        load_model(_Doc, path)
    assert exc.value.issues[0].line is not None
    assert "YAML syntax" in exc.value.issues[0].message


def test_config_empty_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text("")
    with pytest.raises(ConfigError, match="file is empty"):
        load_model(_Doc, tmp_path / "e.yaml")
    with pytest.raises(ConfigError, match="cannot read file"):
        load_model(_Doc, tmp_path / "nope.yaml")


def test_backoff_is_capped_and_jittered() -> None:
    b = Backoff(initial=1, cap=8, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(10)]
    assert all(0.5 <= d <= 8 for d in delays)
    assert max(delays[5:]) > 4
    b.reset()
    assert b.next_delay() <= 1


def test_settings_refuse_missing_secret_outside_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUANJIA_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="GUANJIA_SECRET_KEY"):
        Settings(mode="production")
    assert Settings(mode="demo").secret_key


def test_mqtt_url() -> None:
    u = MqttUrl.parse("mqtts://gw%2F1:p%40ss@broker.example:8884")
    assert (u.username, u.password, u.host, u.port, u.tls) == ("gw/1", "p@ss", "broker.example", 8884, True)
    assert MqttUrl.parse(u.url()) == u
