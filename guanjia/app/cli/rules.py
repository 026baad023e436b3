"""``guanjia rules check|list|replay``: validate, inspect and try out alarm rules.

``check`` reports every problem of every file as ``file:line: field: message`` and exits 2, so it
can gate a CI job or an editor's save hook; ``--profiles`` also cross-checks metrics, enum labels
and bits against the device profiles (exit 1 when a rule could never fire).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

app = typer.Typer(help="Alarm rules: check, list, replay.", no_args_is_help=True)

_PATHS = typer.Argument(None, help="Rule files or folders (default: the built-in library).")


@app.command("check")
def check(
    paths: list[Path] = _PATHS,
    builtin: bool = typer.Option(False, "--builtin", help="Check the files together with the built-in library."),
    profiles: bool = typer.Option(False, "--profiles", help="Also check metrics/labels against device profiles."),
    profile_path: list[Path] = typer.Option(
        [], "--profile-path", help="Extra profile files or folders for --profiles (besides the built-in ones)."
    ),
) -> None:
    """Validate rule files; print file:line: field: message for each problem."""
    from guanjia.core.errors import ConfigError, ConfigIssue
    from rules.ruleset import LIBRARY, load_ruleset, rule_files

    targets = list(paths or [LIBRARY])
    files = rule_files(targets)
    if not files:
        raise ConfigError([ConfigIssue(" ".join(map(str, targets)), None, "", "no rule files found")])
    try:
        ruleset = load_ruleset(targets, builtin=builtin and bool(paths))
    except ConfigError as exc:
        # printed here, one issue per line and never wrapped, so editors and CI can parse them
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(2) from exc
    for file in ruleset.files:
        count = sum(1 for c in ruleset.rules if c.source.file == file)
        typer.echo(f"ok  {file}  ({count} rules)")
    if profiles:
        from device_profiles.loader import builtin_profiles, load_profile, profile_paths
        from device_profiles.model import Profile
        from rules.profiles import check_against_profiles

        known: dict[str, Profile] = dict(builtin_profiles())
        for extra in profile_paths(profile_path):
            profile = load_profile(extra)
            known[profile.id] = profile
        issues = check_against_profiles(ruleset, known.values())
        for issue in issues:
            typer.echo(str(issue), err=True)
        if issues:
            raise typer.Exit(1)
        typer.echo(f"ok  {len(ruleset)} rules match the {len(known)} device profiles")


@app.command("list")
def list_(paths: list[Path] = _PATHS) -> None:
    """List rules: id, severity, kinds, condition, work order, where defined."""
    from rules.ruleset import LIBRARY, describe, load_ruleset

    for row in describe(load_ruleset(paths or [LIBRARY])):
        wo = f"WO:{row['priority'] or 'normal'}" if row["work_order"] else "-"
        typer.echo(
            f"{row['id']:<34} {row['severity']:<8} {','.join(row['kinds']):<9} {row['condition']:<9} "
            f"{wo:<13} {row['source']}"
        )


@app.command("replay")
def replay(
    readings: Path = typer.Argument(..., help="JSON lines: {device, kind, ts, values, quality?, profile?}; - = stdin"),
    paths: list[Path] = typer.Option([], "--rules", "-r", help="Rule files or folders (default: built-in)."),
    tick_ms: int = typer.Option(1000, help="Advance time in steps of this many ms between readings."),
) -> None:
    """Run rules over recorded readings and print the alarm events as wire JSON lines."""
    import orjson

    from rules.engine import RuleEngine
    from rules.ruleset import LIBRARY, load_ruleset

    engine = RuleEngine(load_ruleset(paths or [LIBRARY]), stale_after_ms=None)
    stream = sys.stdin.buffer if str(readings) == "-" else readings.open("rb")
    now: int | None = None
    with stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
                ts = int(item["ts"])
                device, kind, values = item["device"], item["kind"], item["values"]
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                typer.echo(f"{readings}:{number}: skipped: {exc}", err=True)
                continue
            events = []
            if now is not None:
                while now + tick_ms < ts:
                    now += tick_ms
                    events += engine.tick(now)
            now = ts if now is None else max(now, ts)
            events += engine.process(
                device, kind, ts, values, item.get("quality", "good"), item.get("q"), item.get("profile")
            )
            for event in events:
                typer.echo(orjson.dumps(event.to_wire()).decode())
    if now is not None:
        for event in engine.tick(now + tick_ms):
            typer.echo(orjson.dumps(event.to_wire()).decode())
