"""The cloud's check of a command against the device profile, before it is queued.

The same profile and the same codec (:func:`device_profiles.codec.check_write`) the edge uses, so
a command the cloud accepts is one the edge accepts too unless the device itself changed (went
offline, lost its profile). The edge checks again on arrival (:mod:`edge.commands`): the cloud's
check gives the engineer an immediate answer; the edge's is the one that guards the bus.

Which profiles: the gateway's own, from the configuration version it reports running
(:func:`cloud.ops.fleet.configs.running_profiles`), then the shipped library. Why the cloud
refuses devices whose profile it knows from neither (``unknown_profile``) instead of passing them
to the edge unchecked: a command the cloud cannot check is not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cloud.ops.fleet.errors import CommandRefused
from device_profiles import Profile
from device_profiles.codec import check_write
from device_profiles.display import label_of, unit_of
from device_profiles.errors import CodecError
from device_profiles.model import Text

Value = float | int | bool | str
WRITABLE_TABLES = ("coil", "holding_register")


def check_command(profiles: Mapping[str, Profile], profile_id: str | None, point_name: str, value: Value) -> Value:
    """``value`` as it will be sent, or :class:`CommandRefused` with the edge's reason code."""
    profile = profiles.get(profile_id) if profile_id else None
    if profile is None:
        raise CommandRefused("unknown_profile", f"the cloud does not know the device's profile {profile_id!r}")
    try:
        point = profile.point(point_name)
    except KeyError:
        raise CommandRefused("unknown_point", f"{profile.id} has no point {point_name!r}") from None
    if profile.transport != "modbus" or not point.writable or point.table not in WRITABLE_TABLES:
        raise CommandRefused("not_writable", f"{point_name} is read-only")
    if isinstance(value, bool) and not point.is_bit and point.enum is None:
        raise CommandRefused("bad_value", f"{point_name}: a number is expected, not {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if point.min is not None and value < point.min:
            raise CommandRefused("out_of_range", f"{point_name}: {value} is below the minimum {point.min:g}")
        if point.max is not None and value > point.max:
            raise CommandRefused("out_of_range", f"{point_name}: {value} is above the maximum {point.max:g}")
    try:
        check_write(point, value)
    except (CodecError, ValueError, TypeError) as exc:
        raise CommandRefused("bad_value", str(exc)) from exc
    return value


def check_action(profiles: Mapping[str, Profile], profile_id: str | None, name: str) -> None:
    """An action (a command of the profile's ``commands:``, e.g. a gate's ``open``) the device takes,
    or :class:`CommandRefused` (``unknown_profile``, ``unknown_command``)."""
    profile = profiles.get(profile_id) if profile_id else None
    if profile is None:
        raise CommandRefused("unknown_profile", f"the cloud does not know the device's profile {profile_id!r}")
    if profile.command(name) is None:
        known = ", ".join(c.name for c in profile.commands) or "none"
        raise CommandRefused("unknown_command", f"{profile.id} has no command {name!r} (it has: {known})")


@dataclass(frozen=True, slots=True)
class DeviceAction:
    """An action the device page offers as a button."""

    name: str
    label: Text


def device_actions(profiles: Mapping[str, Profile], profile_id: str | None) -> list[DeviceAction]:
    profile = profiles.get(profile_id) if profile_id else None
    return [] if profile is None else [DeviceAction(c.name, c.label) for c in profile.commands]


@dataclass(frozen=True, slots=True)
class WritablePoint:
    """A point a command may write, as the device page's form offers it."""

    name: str
    label: Text
    unit: str | None
    hint: str
    """the accepted values: ``1 … 10``, the enum words, ``0 / 1``; empty when unbounded"""


def writable_points(profiles: Mapping[str, Profile], profile_id: str | None) -> list[WritablePoint]:
    """The points of the device's profile a command may write (none when the cloud does not know
    the profile: no guessing by kind here, unlike the read-only display)."""
    profile = profiles.get(profile_id) if profile_id else None
    if profile is None or profile.transport != "modbus":
        return []
    out: list[WritablePoint] = []
    for p in profile.points:
        if not p.writable or p.table not in WRITABLE_TABLES:
            continue
        if p.enum:
            hint = " / ".join(p.enum.values())
        elif p.is_bit or p.dtype == "bool":
            hint = "0 / 1"
        elif p.min is not None or p.max is not None:
            hint = f"{'' if p.min is None else f'{p.min:g}'} … {'' if p.max is None else f'{p.max:g}'}"
        else:
            hint = ""
        out.append(WritablePoint(p.name, label_of(p), unit_of(p), hint))
    return out
