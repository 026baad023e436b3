"""Benchmarks, the chaos harness and the evaluation harness are not product packages (issue 16)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages  # type: ignore[import-untyped]  # no stubs; only this test uses it

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_packages_leave_bench_out_and_keep_the_labelled_fleet() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    find = config["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(ROOT), include=find["include"], exclude=find.get("exclude", ()))
    assert not [p for p in packages if p == "bench" or p.startswith("bench.")]
    assert {"cloud.analytics", "simulators", "guanjia.app"} <= set(packages)
