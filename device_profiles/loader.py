"""Load profiles from YAML (with file:line: field errors) and find the built-in ones by id.

Built-in profiles are the YAML files in ``device_profiles/library/``; they are parsed once per
process (:func:`builtin_profiles` is cached) because the simulators and the edge look them up for
every device of a fleet.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from device_profiles.checks import profile_problems
from device_profiles.errors import ProfileError
from device_profiles.model import Profile
from guanjia.core.config import LineMap, line_for, parse_model, read_yaml
from guanjia.core.errors import ConfigError, ConfigIssue

LIBRARY = Path(__file__).parent / "library"

__all__ = ["LIBRARY", "builtin_profiles", "find_profile", "load_profile", "parse_profile", "profile_paths"]


def parse_profile(data: Any, source: str = "<profile>", lines: LineMap | None = None, *,
                  require_display: bool = False) -> Profile:
    """Validate already-parsed data as a profile: structure (pydantic) then semantics.

    ``require_display`` also demands every point's labels, group and code words (``profiles
    check`` does, and the library's test holds every shipped profile to it; the edge does not need
    them to poll a device, so a profile still being labelled never stops a gateway).
    """
    lines = lines or {}
    profile = parse_model(Profile, data, source, lines)
    problems = profile_problems(profile, display=require_display)
    if problems:
        raise ConfigError([
            ConfigIssue(source, line_for(path, lines), ".".join(str(p) for p in path), message)
            for path, message in problems
        ])
    return profile


def load_profile(path: str | Path, *, require_display: bool = False) -> Profile:
    """Read and validate one profile file; raises :class:`ConfigError` naming file, line and field."""
    data, lines, source = read_yaml(path)
    return parse_profile(data, source, lines, require_display=require_display)


def profile_paths(paths: Iterable[str | Path] = ()) -> list[Path]:
    """Expand files and directories (``*.yaml``/``*.yml`` inside) into profile files, sorted."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        else:
            out.append(p)
    return out


@functools.cache
def builtin_profiles() -> dict[str, Profile]:
    """Every profile shipped in ``device_profiles/library``, by id (parsed once per process)."""
    found: dict[str, Profile] = {}
    for path in profile_paths([LIBRARY]):
        profile = load_profile(path)  # display metadata: held by `profiles check` and the library's test
        if profile.id in found:
            raise ConfigError([ConfigIssue(str(path), None, "id", f"duplicate profile id {profile.id!r}")])
        found[profile.id] = profile
    return found


def find_profile(name: str | Path) -> Profile:
    """A built-in profile by id, or a profile file by path (``./my-meter.yaml``).

    An unknown id raises :class:`ProfileError` listing the ids that exist.
    """
    text = str(name)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return load_profile(text)
    profiles = builtin_profiles()
    try:
        return profiles[text]
    except KeyError:
        raise ProfileError(f"unknown profile {text!r}; known profiles: {', '.join(sorted(profiles))}") from None
