"""The configuration part of the wire contract: push shape, bundle shape, digest, report parsing."""

from __future__ import annotations

import orjson
import pytest

from guanjia.core.errors import WireError
from guanjia.core.wire import encode_status
from guanjia.core.wire_config import (
    ConfigPush,
    bundle_shape_problems,
    bundle_version,
    encode_config_push,
    parse_config_push,
    parse_config_report,
)

FILES = {"devices.yaml": "links: []\n", "rules/site.yaml": "version: 1\nrules: []\n"}


def test_the_version_is_a_digest_of_names_and_contents() -> None:
    assert bundle_version(FILES) == bundle_version(dict(reversed(list(FILES.items()))))
    assert bundle_version(FILES) != bundle_version({**FILES, "rules/site.yaml": "version: 1\nrules: [] \n"})
    assert bundle_version(FILES) != bundle_version({"devices.yaml": FILES["devices.yaml"],
                                                    "rules/other.yaml": FILES["rules/site.yaml"]})


def test_a_push_round_trips_and_its_shape_is_checked() -> None:
    push = ConfigPush("r1-g1", bundle_version(FILES), FILES, 5.0)
    assert parse_config_push(orjson.loads(encode_config_push(push, ts=1))) == push
    doc = orjson.loads(encode_config_push(push, ts=1))
    cases: list[tuple[dict[str, object], str]] = [
        ({"version": "0123456789ab"}, "digest_mismatch"), ({"id": ""}, "bad_command"),
        ({"files": {**FILES, "../x.yaml": "x"}}, "bad_bundle"), ({"files": []}, "bad_bundle"),
        ({"probation_s": 0}, "bad_command"), ({"version": "XYZ"}, "bad_command")]
    for bad, reason in cases:
        with pytest.raises(WireError) as caught:
            parse_config_push({**doc, **bad})
        assert caught.value.reason == reason, bad


def test_bundle_shape() -> None:
    assert bundle_shape_problems(FILES) == []
    names = [f for f, _ in bundle_shape_problems({"rules/a.yaml": "", "profiles/sub/x.yaml": "", "/etc/x.yaml": ""})]
    assert names == ["devices.yaml", "profiles/sub/x.yaml", "/etc/x.yaml"]
    assert bundle_shape_problems({"devices.yaml": "x" * (600 * 1024)})[0][1].endswith("at most 524288")


def test_the_report_is_read_from_the_status() -> None:
    health = {"config": {"state": "rolled_back", "running": "aaaaaaaaaaaa", "good": "aaaaaaaaaaaa",
                         "attempted": "bbbbbbbbbbbb", "push": "r2-g1", "reason": "devices_offline",
                         "detail": "pump-1", "ts": 5}}
    report = parse_config_report(encode_status("gw", "c", "online", 1, health))
    assert report is not None
    assert (report.state, report.running, report.attempted, report.reason) == (
        "rolled_back", "aaaaaaaaaaaa", "bbbbbbbbbbbb", "devices_offline")
    assert parse_config_report(encode_status("gw", "c", "offline", 1, {})) is None
    assert parse_config_report(b"offline") is None
    assert parse_config_report(encode_status("gw", "c", "online", 1, {"config": {"state": "weird"}})) is None
