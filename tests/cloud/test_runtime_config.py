"""The cloud's one typed config, its factories and routers by real imports, the CLI's one URL resolver."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi import APIRouter

from cloud.app import ROUTERS
from cloud.components import COMPONENTS, INGEST_ONLY
from cloud.ingest.prepare import SEQ_WINDOW
from cloud.ingest.service import components as ingest_components
from cloud.ingest.service import worker_options
from cloud.ingest.worker import BATCH_POINTS, RECEIVE_MAXIMUM, WorkerOptions
from cloud.runtime.context import CloudConfig
from cloud.runtime.errors import CloudError
from cloud.server import components as api_components
from guanjia.app.cli import options
from guanjia.core.errors import ConfigError
from guanjia.core.settings import Settings

DB = "postgresql://unused@127.0.0.1:1/none"


@pytest.fixture(autouse=True)
def _no_cloud_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATABASE_URL", "SMTP_URL", "HEARTBEAT_TIMEOUT_S", "FLEET_RULES", "FLEET_STREAM_RULES", "WO_POLICY"):
        monkeypatch.delenv(f"GUANJIA_{var}", raising=False)


def test_the_config_reads_the_settings_once_and_the_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUANJIA_SMTP_URL", "smtp://mail.example:25")
    monkeypatch.setenv("GUANJIA_HEARTBEAT_TIMEOUT_S", "45")
    monkeypatch.setenv("GUANJIA_FLEET_RULES", "site/fleet.yaml")
    monkeypatch.setenv("GUANJIA_FLEET_STREAM_RULES", os.pathsep.join(["a.yaml", "", "b.yaml"]))
    config = CloudConfig.from_settings(Settings(mode="test", database_url=DB), workers=3, api=False)
    assert (config.database_url, config.workers, config.api) == (DB, 3, False)
    assert config.smtp_url == "smtp://mail.example:25"
    assert config.heartbeat_timeout_s == 45.0
    assert config.fleet_rules == ("site/fleet.yaml",)
    assert config.fleet_stream_rules == ("a.yaml", "b.yaml")
    monkeypatch.setenv("GUANJIA_SMTP_URL", "smtp://changed")  # read once: a built config does not move
    assert config.smtp_url == "smtp://mail.example:25"
    with pytest.raises(AttributeError):
        config.workers = 1  # type: ignore[misc]  # frozen


def test_the_defaults_match_what_the_components_used_without_settings() -> None:
    config = CloudConfig.from_settings(Settings(mode="test", database_url=DB))
    assert (config.smtp_url, config.heartbeat_timeout_s, config.fleet_rules, config.fleet_stream_rules) == \
        (None, 120.0, (), ())
    assert (config.analytics_interval_s, config.analytics_train_days, config.analytics_data_clock) == \
        (900.0, 14, False)


def test_a_missing_database_url_is_a_start_up_error() -> None:
    with pytest.raises(CloudError, match="GUANJIA_DATABASE_URL"):
        CloudConfig.from_settings(Settings(mode="test"))


def test_worker_options_come_from_the_config() -> None:
    config = CloudConfig(DB, group="g", client_id_prefix="p", receive_maximum=7, batch_points=9)
    options_ = worker_options(config, 2)
    assert (options_.client_id, options_.group, options_.receive_maximum, options_.batch_points) == ("p-2", "g", 7, 9)
    assert options_.policy.seq_window == SEQ_WINDOW
    assert worker_options(CloudConfig(DB, seq_window=5), 0).policy.seq_window == 5


def test_flow_control_defaults_are_the_workers_from_the_config_and_the_cli() -> None:
    """One default for the pipeline's depth and batch size, whichever way a worker is started."""
    from guanjia.app.cli.cloud import BATCH_POINTS_DEFAULT, RECEIVE_MAXIMUM_DEFAULT

    defaults = worker_options(CloudConfig(DB), 0)
    assert (defaults.receive_maximum, defaults.batch_points) == (RECEIVE_MAXIMUM, BATCH_POINTS)
    assert (RECEIVE_MAXIMUM_DEFAULT, BATCH_POINTS_DEFAULT) == (RECEIVE_MAXIMUM, BATCH_POINTS)
    # the pipeline holds the batch committing, two prepared ones and the one being formed
    assert 4 * WorkerOptions().batch_messages <= RECEIVE_MAXIMUM


def test_factories_and_routers_are_real_objects_not_names() -> None:
    assert all(callable(f) and not isinstance(f, str) for f in COMPONENTS)
    assert [ingest_components, api_components] == INGEST_ONLY
    assert all(isinstance(router, APIRouter) for router, _ in ROUTERS)


def test_one_url_resolver_flag_then_local_stack_then_error(tmp_path: Path) -> None:
    assert options.database_url("postgresql://given", tmp_path) == "postgresql://given"
    with pytest.raises(ConfigError) as err:
        options.database_url(None, tmp_path)
    assert "GUANJIA_DATABASE_URL" in str(err.value.issues[0])
