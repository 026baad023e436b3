"""Load YAML files written by people in the field, and say exactly where they are wrong.

PyYAML gives us node positions; pydantic gives us field paths. This module joins the two so a
typo in a profile, rule, fleet or agent file is reported as ``file:line: field: message`` instead
of a traceback. Every loader in the project goes through :func:`load_model`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from guanjia.core.errors import ConfigError, ConfigIssue

M = TypeVar("M", bound=BaseModel)
Path_ = tuple[str | int, ...]
LineMap = dict[Path_, int]

__all__ = ["LineMap", "line_for", "load_model", "load_yaml", "parse_model", "read_yaml", "validation_issues"]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that never builds arbitrary objects; positions are recorded by :func:`_walk`."""


def _walk(node: yaml.Node, path: Path_, lines: LineMap) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


def load_yaml(text: str, source: str) -> tuple[Any, LineMap]:
    """Parse YAML text; return the data and a map from field path to 1-based line number."""
    try:
        loader = _LineLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, {}
            lines: LineMap = {}
            _walk(node, (), lines)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([ConfigIssue(source, line, "", f"YAML syntax: {exc.problem or exc}")]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(source, None, "", f"YAML: {exc}")]) from exc
    return data, lines


def line_for(loc: Sequence[str | int], lines: LineMap) -> int | None:
    """The line of ``loc``, or of its nearest parent that has one (for semantic checks after parsing)."""
    path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def validation_issues(
    exc: ValidationError, source: str, lines: LineMap, prefix: Path_ = ()
) -> list[ConfigIssue]:
    """Turn a pydantic error into one :class:`ConfigIssue` per problem, with the nearest line."""
    issues: list[ConfigIssue] = []
    for err in exc.errors(include_url=False):
        loc = (*prefix, *(p for p in err["loc"] if not _is_union_tag(p)))
        field = ".".join(str(p) for p in loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        elif err["type"] == "missing":
            msg = "field required"
        issues.append(ConfigIssue(source, line_for(loc, lines), field, msg))
    return issues


def _is_union_tag(part: str | int) -> bool:
    # pydantic adds the union member's name ("function-after[...]", a tag) into loc; drop noise
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def parse_model(
    model: type[M],
    data: Any,
    source: str,
    lines: LineMap,
    prefix: Path_ = (),
    context: Mapping[str, Any] | None = None,
) -> M:
    """Validate already-parsed YAML data against ``model``, raising :class:`ConfigError`."""
    if data is None:
        raise ConfigError([ConfigIssue(source, 1, "", "file is empty")])
    try:
        return model.model_validate(data, context=dict(context) if context else None)
    except ValidationError as exc:
        raise ConfigError(validation_issues(exc, source, lines, prefix)) from exc


def read_yaml(path: str | Path) -> tuple[Any, LineMap, str]:
    """Read and parse a YAML file: (data, line map, source name for error messages)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(str(p), None, "", f"cannot read file: {exc.strerror}")]) from exc
    data, lines = load_yaml(text, str(p))
    return data, lines, str(p)


def load_model(model: type[M], path: str | Path, context: Mapping[str, Any] | None = None) -> M:
    """Read ``path`` and validate it as ``model``; every error names the file, line and field."""
    data, lines, source = read_yaml(path)
    return parse_model(model, data, source, lines, context=context)


def collect(errors: Iterable[ConfigError]) -> ConfigError | None:
    """Merge several config errors into one, so a check command reports every file at once."""
    issues = [issue for err in errors for issue in err.issues]
    return ConfigError(issues) if issues else None
