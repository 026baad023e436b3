"""``guanjia profiles check|list|show``: validate and inspect device profiles.

``check`` reports every problem of every file as ``file:line: field: message`` and exits 2 (through
``main()``'s ConfigError handler), so it can gate a CI job or an editor's save hook.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Device profiles: check, list, show.", no_args_is_help=True)


@app.command("check")
def check(
    paths: list[Path] = typer.Argument(None, help="Profile files or folders (default: the built-in library)."),
) -> None:
    """Validate profile files, display labels included; print file:line: field: message for each problem."""
    from device_profiles.loader import LIBRARY, load_profile, profile_paths
    from guanjia.core.config import collect
    from guanjia.core.errors import ConfigError, ConfigIssue

    files = profile_paths(paths or [LIBRARY])
    errors: list[ConfigError] = []
    if not files:
        errors.append(ConfigError([ConfigIssue(" ".join(map(str, paths or [])), None, "", "no profile files found")]))
    seen: dict[str, Path] = {}
    for file in files:
        try:
            profile = load_profile(file, require_display=True)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if profile.id in seen:
            errors.append(ConfigError([ConfigIssue(str(file), None, "id",
                                                   f"profile id {profile.id!r} is also used by {seen[profile.id]}")]))
        seen.setdefault(profile.id, file)
        typer.echo(f"ok  {file}  ({profile.id}: {len(profile.points)} points)")
    if (merged := collect(errors)) is not None:
        raise merged


@app.command("list")
def list_() -> None:
    """List the built-in profiles."""
    from device_profiles import builtin_profiles

    for profile in builtin_profiles().values():
        flag = " (synthetic map)" if profile.synthetic else ""
        typer.echo(f"{profile.id:<20} {profile.kind:<9} {profile.transport:<7} {len(profile.points):>3} points  "
                   f"{profile.description}{flag}")


@app.command("show")
def show(name: str = typer.Argument(..., help="Profile id or path to a profile file.")) -> None:
    """Print a profile's points with their tables, 0-based addresses (or meter identifiers), types and scaling."""
    from device_profiles import find_profile
    from device_profiles.codec import ORDER_NAMES
    from device_profiles.meters import point_format

    profile = find_profile(name)
    typer.echo(f"{profile.id}: {profile.description}")
    typer.echo(f"kind={profile.kind} transport={profile.transport} synthetic={profile.synthetic}")
    if profile.source:
        typer.echo(f"source: {profile.source}")
    typer.echo("poll groups: " + ", ".join(f"{g}={p:g}s" for g, p in profile.poll_groups.items()))
    field_of: dict[str, str] = {}
    if profile.mqtt is not None:
        typer.echo(f"topic: {profile.mqtt.topic}")
        field_of = {name: path for path in profile.mqtt.fields for name in profile.mqtt.targets(path)}
        for path, table in profile.mqtt.codes.items():
            typer.echo(f"codes of {path}: " + ", ".join(f"{code}→{label}" for code, label in table.items()))
    if profile.isapi is not None:
        typer.echo(f"alert stream: {profile.isapi.path} (heartbeat {profile.isapi.heartbeat_s:g}s)")
        for key, event in profile.isapi.events.items():
            effects = [f"{k}={v}" for k, v in event.set.items()]
            if event.count is not None:
                effects.append(f"+1 {event.count}")
            typer.echo(f"  event {key:<8} {event.event:<16} {' '.join(effects)}")
    for p in profile.points:
        if p.table is not None:
            where = f"{p.table:<16} {p.address:>5} (0x{p.address:04X}) x{p.register_count}"
            order = ORDER_NAMES[(p.byte_order, p.word_order)] if p.register_count > 1 else ""
        elif p.di is not None:  # DL/T 645: the identifier and its wire format
            where, order = f"di {p.di} {point_format(p).pattern}", ""
        elif p.field is not None:  # CJ/T 188: a field of the 901F reply
            where, order = f"901F {p.field}", ""
        elif profile.isapi is not None:
            where, order = "event stream", ""
        else:
            where, order = f"json {field_of.get(p.name, '?')}", ""
        scale = f" ×{p.scale:g}" if p.scale != 1 else ""
        scale += f" {p.offset:+g}" if p.offset else ""
        extra = " W" if p.writable else ""
        labels = f" {dict(p.enum)}" if p.enum else (f" bits{dict(p.bits)}" if p.bits else "")
        typer.echo(f"  {p.name:<24} {where:<40} {p.dtype:<8} {order:<4}{scale} {p.unit or ''}"
                   f" [{p.poll_group}]{extra}{labels}")
