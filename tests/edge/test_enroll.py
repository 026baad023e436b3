"""The agent's side of enrolment: what it writes, and how a refusal or an unreachable cloud reads.
(The real round trip with the cloud and the broker: tests/cloud/api/test_provisioning_api.py.)"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from edge.config import AgentConfig
from edge.enroll import Enrolment, fetch_enrolment, write_enrolment
from edge.errors import EnrollError

ENROLMENT = Enrolment("demo", "gw-7", "mqtts://broker.example:8883", "gw-demo-gw-7", "s3cret-pw")


def test_a_new_config_is_a_valid_agent_config(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    password_file = write_enrolment(config, ENROLMENT)
    assert password_file.read_text().strip() == "s3cret-pw"
    assert password_file.stat().st_mode & 0o777 == 0o600
    parsed = AgentConfig.model_validate(yaml.safe_load(config.read_text()))
    assert (parsed.community, parsed.gateway, parsed.uplink.username) == ("demo", "gw-7", "gw-demo-gw-7")
    assert parsed.uplink.password_file == password_file
    assert "s3cret-pw" not in config.read_text()


def test_re_enrolment_keeps_everything_else_and_drops_an_inline_password(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({"gateway": "old", "community": "old",
                                      "uplink": {"url": "mqtt://old:1883", "password": "old-pw", "keepalive_s": 20},
                                      "links": [{"type": "tcp", "host": "10.0.0.5", "devices": []}]}))
    write_enrolment(config, ENROLMENT)
    doc = yaml.safe_load(config.read_text())
    assert doc["uplink"]["keepalive_s"] == 20
    assert "password" not in doc["uplink"]
    assert doc["links"][0]["host"] == "10.0.0.5"
    assert doc["gateway"] == "gw-7"


def test_not_a_mapping_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("- a list\n")
    with pytest.raises(EnrollError, match="not a YAML mapping"):
        write_enrolment(config, ENROLMENT)


async def test_refusals_and_outages_are_enroll_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"code": "invalid_token", "message": "used token"}})

    with pytest.raises(EnrollError, match=r"HTTP 401.*used token"):
        await fetch_enrolment("http://cloud", "gjb_x", transport=httpx.MockTransport(refuse))

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"community": "c"})

    with pytest.raises(EnrollError, match="unexpected"):
        await fetch_enrolment("http://cloud", "gjb_x", transport=httpx.MockTransport(garbage))
    with pytest.raises(EnrollError, match="cannot reach"):
        await fetch_enrolment("http://127.0.0.1:9", "gjb_x", timeout=2)


def test_the_cli_says_why_and_writes_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "agent.yaml"
    result = subprocess.run([sys.executable, "-m", "guanjia.app.cli.main", "edge", "enroll", "--cloud",
                             "http://127.0.0.1:9", "--token", "gjb_x", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "cannot reach the cloud" in result.stderr
    assert "Traceback" not in result.stderr
    assert not config.exists()
