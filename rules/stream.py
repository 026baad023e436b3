"""Feed wire telemetry (decoded batches) to a rule engine: the cloud's fleet-rule entry point.

The cloud evaluates the same rule language on the ingested stream; readings there carry no device
kind, so a ``directory`` callback (device id → (kind, profile)) supplies it from the registry.
Readings of devices the directory does not know are counted and skipped, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rules.engine import AlarmEvent, RuleEngine

Directory = Callable[[str], tuple[str, str | None] | None]


class StreamEvaluator:
    """Run readings shaped like the wire's ``readings`` items through ``engine``.

    ``engine`` should be built with ``stale_after_ms=None`` when readings are sparse (report by
    exception, rollups), so time-driven conditions keep running between readings.
    """

    def __init__(self, engine: RuleEngine, directory: Directory) -> None:
        self.engine = engine
        self.directory = directory
        self.unknown_devices = 0
        self.malformed = 0

    def readings(self, items: Iterable[Mapping[str, Any]]) -> list[AlarmEvent]:
        events: list[AlarmEvent] = []
        for item in items:
            try:
                device = item["device"]
                ts = int(item["ts"])
                values = item["values"]
            except (KeyError, TypeError, ValueError):
                self.malformed += 1
                continue
            found = self.directory(device)
            if found is None:
                self.unknown_devices += 1
                continue
            kind, profile = found
            events += self.engine.process(
                device, kind, ts, values, item.get("quality", "good"), item.get("q"), profile=profile
            )
        return events

    def tick(self, now_ms: int) -> list[AlarmEvent]:
        return self.engine.tick(now_ms)
