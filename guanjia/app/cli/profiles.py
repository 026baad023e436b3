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
    """Print a profile's points with their tables, 0-based addresses, types and scaling."""
    from device_profiles import find_profile
    from device_profiles.codec import ORDER_NAMES

    profile = find_profile(name)
    typer.echo(f"{profile.id}: {profile.description}")
    typer.echo(f"kind={profile.kind} transport={profile.transport} synthetic={profile.synthetic}")
    if profile.source:
        typer.echo(f"source: {profile.source}")
    typer.echo("poll groups: " + ", ".join(f"{g}={p:g}s" for g, p in profile.poll_groups.items()))
    if profile.mqtt is not None:
        typer.echo(f"topic: {profile.mqtt.topic}")
        field_of = {v: k for k, v in profile.mqtt.fields.items()}
    for p in profile.points:
        if p.table is not None:
            where = f"{p.table:<16} {p.address:>5} (0x{p.address:04X}) x{p.register_count}"
            order = ORDER_NAMES[(p.byte_order, p.word_order)] if p.register_count > 1 else ""
        else:
            where, order = f"json {field_of.get(p.name, '?')}", ""
        scale = f" ×{p.scale:g}" if p.scale != 1 else ""
        scale += f" {p.offset:+g}" if p.offset else ""
        extra = " W" if p.writable else ""
        labels = f" {dict(p.enum)}" if p.enum else (f" bits{dict(p.bits)}" if p.bits else "")
        typer.echo(f"  {p.name:<24} {where:<40} {p.dtype:<8} {order:<4}{scale} {p.unit or ''}"
                   f" [{p.poll_group}]{extra}{labels}")
