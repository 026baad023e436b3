"""The exception root shared by every guanjia package.

Each package (``edge``, ``cloud``, ``device_profiles``, ``rules``, ``simulators``) derives its own
root from :class:`GuanjiaError`, and wraps third-party errors at its adapter boundary
(``raise EdgeError(...) from exc``), so callers handle one tree::

    GuanjiaError
    ├── ConfigError            a user-written file is wrong (carries file:line: field: message)
    ├── WireError              a message does not follow the wire contract
    ├── StackError             the local PostgreSQL/Mosquitto stack could not be managed
    ├── device_profiles.ProfileError
    ├── rules.RuleError
    ├── edge.EdgeError
    ├── cloud.CloudError
    └── simulators.SimulatorError
"""

from __future__ import annotations

from dataclasses import dataclass


class GuanjiaError(Exception):
    """Root of every error guanjia raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file, printable as ``file:line: field: message``."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        field = self.field or "(document)"
        return f"{where}: {field}: {self.message}"


class ConfigError(GuanjiaError):
    """A config, profile, rule, fleet or scenario file is invalid; ``issues`` says where and why."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class WireError(GuanjiaError):
    """A payload does not follow the wire contract; ``reason`` is a short machine-friendly code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class StackError(GuanjiaError):
    """The local service stack (private PostgreSQL / Mosquitto) could not be set up or reached."""
