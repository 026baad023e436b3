"""Configuration bundles: the part of an agent's configuration the cloud manages (issue 19).

A bundle is a handful of files, exactly as they lie on the box::

    devices.yaml        links, mqtt_devices, isapi — the device lists with their poll periods
    profiles/*.yaml     device profiles (devices.yaml names them as ``profiles/NAME.yaml``)
    rules/*.yaml        local rule sets, loaded beside the agent file's own rules

The agent file keeps what belongs to the box (identity, broker credentials, outbox, paths); the
bundle replaces its device lists and adds its rules. :func:`load_bundle` is *the* validator:
``guanjia edge check`` runs it on the box's last good version, the agent runs it on every push
before anything is swapped, and the cloud runs it (:func:`check_bundle`, passed in by
:mod:`guanjia.app`, since the cloud may not import the edge) before it stores a version. One
function, so a bundle the cloud accepted is a bundle the edge accepts, and the errors read the
same everywhere: ``devices.yaml:7: links.0.devices.1.profile: unknown profile 'vfd-pmp'``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from device_profiles import find_profile
from device_profiles.errors import ProfileError
from edge.config import (
    AgentConfig,
    IsapiConfig,
    LinkConfig,
    MqttDevicesConfig,
    UplinkConfig,
    profile_ref,
    unique_devices,
)
from guanjia.core.config import line_for, parse_model, read_yaml
from guanjia.core.errors import ConfigError, ConfigIssue
from guanjia.core.wire_config import bundle_shape_problems, bundle_version
from rules import load_ruleset

DEVICES_FILE = "devices.yaml"


class BundleDevices(BaseModel):
    """``devices.yaml``: the device lists of :class:`~edge.config.AgentConfig`, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    links: list[LinkConfig] = Field(default_factory=list)
    mqtt_devices: MqttDevicesConfig = MqttDevicesConfig()
    isapi: IsapiConfig = IsapiConfig()

    @model_validator(mode="after")
    def _unique(self) -> BundleDevices:
        unique_devices(self.links, self.mqtt_devices, self.isapi)
        return self


def write_bundle(files: Mapping[str, str], folder: Path) -> None:
    """Unpack ``files`` into ``folder`` (names already checked against the bundle's shape)."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


ProfileLoader = Callable[[str], object]
RulesLoader = Callable[[list[Path], bool], object]


def _load_rules(paths: list[Path], builtin: bool) -> object:
    return load_ruleset(paths, builtin=builtin)


def load_bundle(base: AgentConfig, folder: Path, *, profiles: ProfileLoader = find_profile,
                rules: RulesLoader = _load_rules) -> AgentConfig:
    """``base`` with the bundle in ``folder`` applied, after checking every file of it: the device
    lists (file:line), every profile they name (built-in id or ``profiles/…`` file) and the rules
    (the bundle's with the agent file's). Raises one :class:`ConfigError` listing every problem.

    ``profiles`` and ``rules`` are the loaders (:func:`device_profiles.find_profile`,
    :func:`rules.load_ruleset`); :func:`check_bundle` passes memoising wrappers of the same."""
    data, lines, source = read_yaml(folder / DEVICES_FILE)
    devices = parse_model(BundleDevices, data, source, lines)
    issues: list[ConfigIssue] = []
    refs: list[tuple[tuple[str | int, ...], str]] = [
        *((("links", i, "devices", j, "profile"), d.profile)
          for i, link in enumerate(devices.links) for j, d in enumerate(link.devices)),
        *((("mqtt_devices", "devices", i, "profile"), d.profile) for i, d in enumerate(devices.mqtt_devices.devices)),
        *((("isapi", "devices", i, "profile"), d.profile) for i, d in enumerate(devices.isapi.devices)),
    ]
    for loc, ref in refs:
        try:
            profiles(profile_ref(ref, folder))
        except ConfigError as exc:
            issues.extend(exc.issues)
        except ProfileError as exc:
            issues.append(ConfigIssue(source, line_for(loc, lines), ".".join(map(str, loc)), str(exc)))
    rules_dir = folder / "rules"
    paths = [*base.rules.paths, *([rules_dir] if rules_dir.is_dir() else [])]
    try:
        rules(paths, base.rules.builtin)
    except ConfigError as exc:
        issues.extend(exc.issues)
    if issues:
        raise ConfigError(issues)
    resolved = AgentConfig(gateway=base.gateway, community=base.community, uplink=base.uplink, links=devices.links,
                           mqtt_devices=devices.mqtt_devices, isapi=devices.isapi).resolved(folder)
    return base.model_copy(update={
        "links": resolved.links, "mqtt_devices": resolved.mqtt_devices, "isapi": resolved.isapi,
        "rules": base.rules.model_copy(update={"paths": paths}),
    })


_CHECK_BASE = AgentConfig(gateway="check", community="check", uplink=UplinkConfig(url="mqtt://localhost"))
"""The agent file a bundle is checked against away from a box (the cloud): the built-in rules on,
so a bundle's rule may not reuse a library rule's id on any gateway."""


_MEMO: dict[tuple[object, ...], object] = {}
_MEMO_MAX = 512


def _memo(key: tuple[object, ...], folder: Path, load: Callable[[], object]) -> object:
    """Profile and rule files are parsed once per content, not once per gateway: a rollout to a
    hundred gateways checks a hundred bundles that differ in ``devices.yaml`` only, and parsing
    YAML with line numbers costs tens of ms a file. Problems are kept with bundle-relative names."""
    prefix = f"{folder}/"
    hit = _MEMO.get(key)
    if hit is None:
        try:
            hit = load()
        except ConfigError as exc:
            hit = [ConfigIssue(i.file.removeprefix(prefix), i.line, i.field, i.message) for i in exc.issues]
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()
        _MEMO[key] = hit
    if isinstance(hit, list):
        raise ConfigError([ConfigIssue(prefix + i.file, i.line, i.field, i.message) for i in hit])
    return hit


def _memo_loaders(folder: Path) -> tuple[ProfileLoader, RulesLoader]:
    def profile(ref: str) -> object:
        path = Path(ref)
        if not path.is_absolute() or folder not in path.parents or not path.is_file():
            return find_profile(ref)
        name = str(path.relative_to(folder))
        return _memo(("profile", name, path.read_text(encoding="utf-8")), folder, lambda: find_profile(ref))

    def ruleset(paths: list[Path], builtin: bool) -> object:
        if not all(folder in p.parents for p in paths):  # the agent file's own rules: read them as they are
            return load_ruleset(paths, builtin=builtin)
        texts = tuple((str(p.relative_to(folder)), p.read_text(encoding="utf-8"))
                      for d in paths for p in sorted(d.glob("*.y*ml")))
        return _memo(("rules", builtin, texts), folder, lambda: load_ruleset(paths, builtin=builtin))

    return profile, ruleset


def load_bundle_cached(base: AgentConfig, folder: Path) -> AgentConfig:
    """:func:`load_bundle` with profile and rule files parsed once per content: what an agent
    applies a push with (several agents in one process — the ``fleet`` bench — share the work)."""
    profiles, rules = _memo_loaders(folder)
    return load_bundle(base, folder, profiles=profiles, rules=rules)


def check_bundle(files: Mapping[str, str]) -> str:
    """Validate a bundle away from the box (the cloud's check, :class:`cloud.runtime.context.EdgeConfigCheck`):
    its version, or :class:`ConfigError` with file names as in the bundle (``rules/pumps.yaml:12: …``)."""
    shape = bundle_shape_problems(files)
    if shape:
        raise ConfigError([ConfigIssue(name, None, "", message) for name, message in shape])
    with tempfile.TemporaryDirectory(prefix="guanjia-bundle-") as tmp:
        folder = Path(tmp)
        write_bundle(files, folder)
        try:
            load_bundle_cached(_CHECK_BASE, folder)
        except ConfigError as exc:
            prefix = f"{folder}/"
            raise ConfigError([ConfigIssue(i.file.removeprefix(prefix), i.line, i.field, i.message)
                               for i in exc.issues]) from None
    return bundle_version(files)
